// Bundle labextension/lib (compiled TypeScript) into jupyter_mlbox/labextension with the
// @jupyterlab/builder in node_modules, against the installed JupyterLab's staging/ directory
// (the versions of the packages JupyterLab shares with extensions).
// Why not `jupyter labextension build`: it now delegates to jupyter_builder, which wants
// @jupyterlab/core-meta, a package not published for every JupyterLab release.
// Run from labextension/ (npm run build:prod does). Extra arguments go to the builder
// (--development, --source-map). $PYTHON names the interpreter whose jupyterlab to build against;
// otherwise the first of python, python3 on PATH that has jupyterlab (in an isolated wheel build
// that is the build environment's, where jupyterlab is a build requirement).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const PROBE =
  'import importlib.util, os, sys; spec = importlib.util.find_spec("jupyterlab"); ' +
  'spec or sys.exit(1); print(os.path.join(list(spec.submodule_search_locations)[0], "staging"))';

function stagingDir() {
  const candidates = process.env.PYTHON ? [process.env.PYTHON] : ['python', 'python3'];
  for (const python of candidates) {
    try {
      const dir = execFileSync(python, ['-c', PROBE], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore']
      }).trim();
      if (existsSync(join(dir, 'package.json'))) {
        return dir;
      }
    } catch {
      // not installed, or no jupyterlab there: try the next one
    }
  }
  console.error(
    `[bundle-labextension] none of ${candidates.join(', ')} can import jupyterlab: ` +
      'put the environment that has jupyterlab first on PATH (PATH="$PWD/.venv/bin:$PATH"), ' +
      'or set PYTHON=/path/to/that/python'
  );
  process.exit(1);
}

const builder = join('node_modules', '@jupyterlab', 'builder', 'lib', 'build-labextension.js');
if (!existsSync(builder)) {
  console.error('[bundle-labextension] @jupyterlab/builder is missing: run `npm ci` in labextension/');
  process.exit(1);
}
const core = stagingDir();
console.error(`[bundle-labextension] bundling with @jupyterlab/builder against ${core}`);
execFileSync(process.execPath, [builder, '--core-path', core, ...process.argv.slice(2), '.'], {
  stdio: 'inherit'
});
