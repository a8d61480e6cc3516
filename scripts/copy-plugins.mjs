// After prebuildify: put the shipped accelerator plugins next to the prebuilt addon, where the loader
// looks first. cuda-sim and the CPU fake of CANN (build-plugins/fake-cann) are for tests and never shipped. GLMK_REQUIRE_PLUGINS=1 (CI) makes a
// missing plugin an error instead of a note.
import { spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dest = join(root, "prebuilds", `${process.platform}-${process.arch}`);
const SHIPPED = ["cuda", "ascend"];
const NEEDS = { cuda: "nvcc", ascend: "CMake and g++" };
let missing = 0;
for (const kind of SHIPPED) {
  const file = `libglmk-${kind}.so`;
  const src = join(root, "build-plugins", file);
  if (!existsSync(src)) {
    console.error(`copy-plugins: ${file} was not built (npm run build:plugins needs ${NEEDS[kind]}): not shipped`);
    missing++;
    continue;
  }
  mkdirSync(dest, { recursive: true });
  copyFileSync(src, join(dest, file));
  spawnSync("strip", ["--strip-unneeded", join(dest, file)]);
  console.error(`copy-plugins: ${join("prebuilds", `${process.platform}-${process.arch}`, file)} (${(statSync(join(dest, file)).size / 2 ** 20).toFixed(1)} MiB)`);
}
if (missing && process.env.GLMK_REQUIRE_PLUGINS === "1") process.exit(1);
