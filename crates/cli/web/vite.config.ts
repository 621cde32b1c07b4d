// Vite builds the page into dist/, which the `conclave` binary embeds (src/web/assets.rs).
// File names are fixed (no content hashes) so the Rust side can name each file with
// include_bytes!; the server sends them with `Cache-Control: no-cache`. Nothing is inlined:
// the Content-Security-Policy allows scripts and styles from 'self' only.
import { defineConfig } from "vite";

export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    sourcemap: false,
    rolldownOptions: {
      output: {
        entryFileNames: "assets/app.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/[name][extname]",
      },
    },
  },
});
