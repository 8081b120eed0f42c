// The Swagger UI assets are imported as text (`with { type: "text" }`) so the compiled binary
// carries them; these declarations tell tsc what such an import yields.
declare module "swagger-ui-dist/swagger-ui-bundle.js" {
  const text: string;
  export default text;
}
declare module "swagger-ui-dist/swagger-ui.css" {
  const text: string;
  export default text;
}
