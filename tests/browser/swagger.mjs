// Opens Swagger UI of a running Procyon server in headless Chromium, enters a token through
// "Authorize" when given one, uses "Try it out" on example.<fn> with its example body (or, with
// `publish`, on PUT /v1/databases/{db} with a .wasm file) and prints the status and response
// body it shows.
// Usage: node swagger.mjs <server-url> <screenshot.png> <fn> [token]
//        node swagger.mjs <server-url> <screenshot.png> publish <token> <db> <module.wasm>
import { chromium } from "playwright-core";

const [server, screenshot, fn, token, db, wasm] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage();
  await page.goto(new URL("/swagger/index.html", server).href);
  if (token) {
    await page.locator(".auth-wrapper .authorize").click();
    const dialog = page.locator(".modal-ux");
    await dialog.locator("input").first().fill(token);
    await dialog.locator(".auth-btn-wrapper .authorize").click();
    await dialog.locator(".auth-btn-wrapper .btn-done").click();
  }
  const path = fn === "publish" ? "/v1/databases/{db}" : `/v1/databases/example/call/${fn}`;
  const operation = page.locator(fn === "publish" ? ".opblock-put" : ".opblock", { hasText: path }).first();
  await operation.locator(".opblock-summary").click();
  await operation.getByRole("button", { name: "Try it out" }).click();
  if (fn === "publish") {
    await operation.locator('tr[data-param-name="db"] input').fill(db);
    await operation.locator('input[type="file"]').setInputFiles(wasm);
  }
  await operation.getByRole("button", { name: "Execute" }).click();
  const body = operation.locator(".live-responses-table .response-col_description pre").first();
  await body.waitFor({ timeout: 15000 });
  const status = (await operation.locator(".live-responses-table tbody .response-col_status").first().innerText()).trim();
  console.log(`status: ${status}`);
  console.log(`result: ${(await body.innerText()).trim().replace(/\s+/g, " ")}`);
  await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}
