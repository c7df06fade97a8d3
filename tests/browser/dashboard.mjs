// Drives the console's dashboard in headless Chromium as a database's owner: calls count_units
// through the form generated for its struct argument, schedules a reminder and watches its row
// go from pending to run, sees the reminder's log line arrive live and the activity charts
// count the calls. Usage: node dashboard.mjs <server-url> <screenshot.png> <owner-token> [db]
import { chromium } from "playwright-core";

const [server, screenshot, token, db = "example"] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
const field = (path) => `[data-path="${path}"]`;
try {
  const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
  await page.goto(new URL("/", server).href);
  await page.locator("#status", { hasText: "live" }).waitFor({ timeout: 15000 });
  await page.fill("#token", token);
  await page.click("#use-token");
  await page.locator("#whoami", { hasText: /^as [0-9a-f]{16}/ }).waitFor({ timeout: 15000 });

  // A struct argument with a list of structs, an option and an enum, filled field by field.
  await page.locator(`.fn[data-db="${db}"][data-fn="count_units"]`).click();
  await page.fill(field("order.id"), "7");
  await page.fill(field("order.customer"), "ab".repeat(32));
  await page.click(field("order.items+"));
  await page.click(field("order.items+"));
  await page.fill(field("order.items.0.name"), "apple");
  await page.fill(field("order.items.0.qty"), "2");
  await page.fill(field("order.items.1.name"), "pear");
  await page.fill(field("order.items.1.qty"), "3");
  await page.check(field("order.note?"));
  await page.fill(field("order.note"), "leave at the door");
  await page.selectOption(field("order.status"), "Cancelled");
  await page.fill(field("order.status.Cancelled"), "out of stock");
  await page.click("#call");
  await page.locator("#response", { hasText: /^200/ }).waitFor({ timeout: 15000 });
  console.log(`form response: ${(await page.locator("#response").innerText()).replace(/\n/g, " ")}`);

  // A scheduled row: pending in the scheduler view, then run, and its log line live.
  const text = `dashboard ${Date.now()}`;
  await page.locator(`.fn[data-db="${db}"][data-fn="schedule_reminder"]`).click();
  await page.fill(field("text"), text);
  await page.fill(field("delay_ms"), "5000");
  await page.click("#call");
  const reminder = page.locator('#scheduler [data-table="reminder"]');
  await reminder.locator(".pending", { hasText: /^[1-9]\d* pending/ }).waitFor({ timeout: 15000 });
  console.log(`scheduled: ${await reminder.locator(".pending").innerText()}`);
  const ran = await reminder.locator(".runs li.ok").count();
  await reminder.locator(".runs li.ok").nth(ran).waitFor({ timeout: 20000 });
  console.log(`run: ${await reminder.locator(".runs li.ok").first().innerText()}`);
  console.log(`after: ${await reminder.locator(".pending").innerText()}`);
  const log = page.locator("#logs li", { hasText: `reminder: ${text}` });
  await log.waitFor({ timeout: 15000 });
  console.log(`log: ${await log.innerText()}`);

  await page.waitForFunction(() => Number(document.getElementById("charts").dataset.calls) >= 2, null, { timeout: 15000 });
  console.log(`charted calls: ${await page.locator("#charts").getAttribute("data-calls")}`);
  console.log(`charts: ${await page.locator("#charts .uplot").count()}`);
  await page.screenshot({ path: screenshot, fullPage: true });
} finally {
  await browser.close();
}
