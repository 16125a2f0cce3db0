// temp exploration helper (deleted later)
import { launchBrowser, loggedInPage, url } from './lib/helpers.mjs';
const [user, ...paths] = process.argv.slice(2);
const browser = await launchBrowser();
const { context, page } = await loggedInPage(browser, user);
for (const p of paths) {
  const r = await page.goto(url(p));
  console.log(`=== ${p} ${r.status()}`);
  console.log(await page.locator('main').count() ? await page.locator('main').innerHTML() : await page.content());
}
await browser.close();
