// Opens Swagger UI of a running Procyon server in headless Chromium, uses "Try it out" on
// example.add with its example body and prints the response body it shows.
// Usage: node swagger.mjs <server-url> <screenshot.png>
import { chromium } from "playwright-core";

const [server, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage();
  await page.goto(new URL("/swagger/index.html", server).href);
  const operation = page.locator(".opblock", { hasText: "/v1/databases/example/call/add" }).first();
  await operation.locator(".opblock-summary").click();
  await operation.getByRole("button", { name: "Try it out" }).click();
  await operation.getByRole("button", { name: "Execute" }).click();
  const body = operation.locator(".live-responses-table .response-col_description pre").first();
  await body.waitFor({ timeout: 15000 });
  const status = (await operation.locator(".live-responses-table tbody .response-col_status").first().innerText()).trim();
  console.log(`status: ${status}`);
  console.log(`result: ${(await body.innerText()).trim()}`);
  await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}
