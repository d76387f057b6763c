#!/usr/bin/env bash
# Rebuild plotly-skastro.min.js: plotly.js with only the traces the explorer draws (scattergl,
# scatter3d; scatter comes with the core). The full bundle is 4.8 MB and takes about 2 s of
# CPU to evaluate in a browser; this one is 2 MB and about 0.55 s, which is most of the
# explorer's time to first render (benchmarks/bench_explorer.py).
#
# Usage: bash skastro/explorer/_static/build_plotly.sh   (needs node >= 20 and npm)
# The plotly.js version is the one the installed plotly Python package ships, so the bundle
# and the full plotly.min.js that the HTML export falls back to stay in step.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version="${PLOTLYJS_VERSION:-$(python -c 'from plotly.offline import get_plotlyjs_version as v; print(v())')}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y > /dev/null
# The build tools plotly.js's own esbuild-config.js uses, at the versions its package.json names.
npm install --no-audit --no-fund --ignore-scripts "plotly.js@$version" esbuild@^0.28.1 \
    esbuild-plugin-environment@^0.5.0 esbuild-plugin-glsl@^1.4.2 \
    esbuild-plugin-inline-css@^0.0.1 stream-browserify@^3.0.0 buffer@^6.0.3
cat > entry.js <<'JS'
'use strict';
var Plotly = require('plotly.js/lib/core');
Plotly.register([require('plotly.js/lib/scattergl'), require('plotly.js/lib/scatter3d')]);
module.exports = Plotly;
JS
cat > build.js <<JS
// The options of plotly.js's esbuild-config.js, minified, with a different entry point.
require('esbuild').build({
  entryPoints: ['./entry.js'],
  outfile: '$here/plotly-skastro.min.js',
  format: 'iife', globalName: 'Plotly', bundle: true, minify: true, legalComments: 'eof',
  plugins: [require('esbuild-plugin-inline-css')(),
            require('esbuild-plugin-glsl').glsl({ minify: true }),
            require('esbuild-plugin-environment').environmentPlugin({ NODE_DEBUG: false })],
  alias: { regl: '@plotly/regl', stream: 'stream-browserify' },
  define: { global: 'window', 'define.amd': 'false' },
  target: 'es2016',
  banner: { js: '/* plotly.js v$version (MIT license, Plotly, Inc.): core, scattergl and '
              + 'scatter3d only, for the skastro explorer; rebuilt by build_plotly.sh */' },
  footer: { js: 'window.Plotly = Plotly;' },
}).catch(() => process.exit(1));
JS
node build.js
echo "wrote $here/plotly-skastro.min.js (plotly.js $version)"
