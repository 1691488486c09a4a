import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderUiPage } from '../../../shared/ui/page.js';
import { UI_SCRIPT, UI_STYLE } from '../../../shared/ui/web-assets.generated.js';

const generatedFile = fileURLToPath(new URL('../../../shared/ui/web-assets.generated.ts', import.meta.url));

describe('the bundled run-history page', () => {
  it('the committed bundle is what esbuild builds from shared/ui/web/ now (run `npm run build` when this fails)', async () => {
    // A plain .mjs build script without types: imported through a variable, typed here.
    const script: string = '../../../shared/ui/build-web.mjs';
    const { renderAssetsModule } = (await import(script)) as { renderAssetsModule: () => Promise<string> };
    expect(readFileSync(generatedFile, 'utf8') === (await renderAssetsModule())).toBe(true);
  });

  it('carries uPlot and its CSS inline, with no external reference', () => {
    expect(UI_SCRIPT).toContain('uPlot 1.6.');
    expect(UI_STYLE).toContain('.uplot');
    const { html } = renderUiPage();
    expect(html).not.toMatch(/<script[^>]*\bsrc=|<link\b|@import|url\(\s*['"]?https?:/i);
    // The only absolute URL is uPlot's licence banner.
    expect(html.match(/https?:\/\/[^\s"')]+/g)).toEqual(['https://github.com/leeoniya/uPlot']);
  });

  it('the CSP pins exactly the inline script and style by hash', () => {
    const { html, headers } = renderUiPage();
    const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
    const style = /<style>([\s\S]*?)<\/style>/.exec(html)![1]!;
    expect(script.toLowerCase()).not.toContain('</script');
    const sha = (s: string) => createHash('sha256').update(s, 'utf8').digest('base64');
    const csp = headers['content-security-policy']!;
    expect(csp).toContain(`script-src 'sha256-${sha(script)}'`);
    expect(csp).toContain(`style-src 'sha256-${sha(style)}'`);
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).toMatch(/connect-src 'self'/);
    expect(headers['content-type']).toBe('text/html; charset=utf-8');
  });
});
