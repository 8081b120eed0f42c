// ley 0.8.1 ships types for its entry point only; this covers the one internal we replace.
declare module "ley/lib/util.js" {
  const util: {
    glob: (dir: string) => Promise<{ name: string; abs: string }[]>;
  };
  export default util;
}
