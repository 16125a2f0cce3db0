import { launchBrowser, loggedInPage, url } from './lib/helpers.mjs';
const browser = await launchBrowser();
const { page } = await loggedInPage(browser, 'admin');
await page.goto(url('/points'));
console.log(JSON.stringify(await page.title()).slice(0, 300));
console.log(await page.locator('#new-point-form').count());
await browser.close();
