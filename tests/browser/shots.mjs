// Screenshots of one page at 1400 and 390 px: OUT_DIR/NAME-1400.png and OUT_DIR/NAME-390.png.
// Prints one JSON line with how far each width scrolls sideways (0 when it fits), the narrowest
// table cell with text, and any script errors; exits 1 on failure.
//
// usage: node shots.mjs URL OUT_DIR NAME
import { chromium } from 'playwright-core';

const [url, outDir, name] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--no-first-run', '--disable-sync', '--disable-quic'],
});
try {
  const seen = { errors: [] };
  for (const width of [1400, 390]) {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    page.on('pageerror', (e) => seen.errors.push(String(e)));
    const response = await page.goto(url);
    seen[`status${width}`] = response.status();
    seen[`overflow${width}`] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    // The narrowest table cell that shows text, in px: a squeezed column breaks a name into
    // two-letter lines without any sideways scroll.
    seen[`narrowestCell${width}`] = await page.evaluate(() => Math.min(100000, ...[...document.querySelectorAll('td')]
      .filter((td) => td.offsetParent !== null && td.textContent.trim() !== '')
      .map((td) => Math.round(td.getBoundingClientRect().width))));
    await page.screenshot({ path: `${outDir}/${name}-${width}.png`, fullPage: width === 390 });
    await page.close();
  }
  console.log(JSON.stringify(seen));
} catch (e) {
  console.error(`browser shots: ${e}`);
  process.exit(1);
} finally {
  await browser.close();
}
