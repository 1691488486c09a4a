import { UI_SCRIPT, UI_SCRIPT_SHA256, UI_STYLE, UI_STYLE_SHA256 } from './web-assets.generated.js';

/**
 * The whole page in one response: script and styles are inline. In Azure the page is opened with
 * `?code=<function key>`; separate asset requests would not carry the key, inline ones need none.
 * The CSP admits exactly this script (by hash) and data calls to the same origin.
 */
export function renderUiPage(title = 'tidemark · run history'): { html: string; headers: Record<string, string> } {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title.replace(/[<>&"]/g, '')}</title>
<style>${UI_STYLE}</style>
</head>
<body data-state="loading">
<header class="top"><a href="#/">tidemark</a><span class="sub">run history</span><span class="updated" id="updated"></span></header>
<main id="app"><p class="muted">Loading…</p></main>
<script>${UI_SCRIPT}</script>
</body>
</html>
`;
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      // uPlot positions its cursor and legend through element.style, which CSP's style-src
      // governs as inline style: 'unsafe-inline' for styles only, scripts stay hash-pinned.
      'content-security-policy': [
        "default-src 'none'",
        `script-src 'sha256-${UI_SCRIPT_SHA256}'`,
        `style-src 'sha256-${UI_STYLE_SHA256}' 'unsafe-inline'`,
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join('; '),
    },
  };
}
