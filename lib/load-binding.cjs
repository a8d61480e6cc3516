"use strict";
// Loads the prebuilt (or locally built) addon. Plain CommonJS so that the ESM and CJS builds share it:
// __dirname is dist/esm or dist/cjs, two levels below the package root.
const path = require("node:path");

const root = path.join(__dirname, "..", "..");

function loadBinding() {
  try {
    return { binding: require("node-gyp-build")(root), root, error: null };
  } catch (error) {
    return { binding: null, root, error };
  }
}
loadBinding.root = () => root;
module.exports = loadBinding;
