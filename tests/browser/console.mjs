// Opens the console page (/) in headless Chromium, calls example.add(2, 3) from its JSON tab and waits
// for the result to arrive in the live feed through the SignalR JavaScript client.
// Usage: node console.mjs <server-url> <screenshot.png>
import { chromium } from "playwright-core";

const [server, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage();
  await page.goto(new URL("/", server).href);
  await page.locator("#status", { hasText: "live" }).waitFor({ timeout: 15000 });
  await page.locator('.fn[data-db="example"][data-fn="add"]').click();
  await page.click("#tab-json");
  await page.fill("#args", "[2, 3]");
  await page.click("#call");
  const feed = page.locator("#feed li", { hasText: "example.add [http] ok: 5" }).first();
  await feed.waitFor({ timeout: 15000 });
  console.log(`response: ${(await page.locator("#response").innerText()).replace(/\n/g, " ")}`);
  console.log(`feed: ${await feed.innerText()}`);
  await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}
