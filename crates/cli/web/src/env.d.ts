// Vite turns imported CSS into the built stylesheet.
declare module "*.css";
