// SQL files are imported as text (`with { type: "text" }`) so the bundler inlines them.
declare module "*.sql" {
  const text: string;
  export default text;
}
