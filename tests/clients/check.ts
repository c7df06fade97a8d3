// Uses the TypeScript bindings `procyon generate --lang typescript --db example` wrote to
// generated/: node out/check.js <server> <token>. ClientBindingsTests checks what it prints.
import { ExampleClient, ProcyonError, type Order, type ProcyonCallResult } from "./generated/example";
import { PortedClient } from "./generated/ported";

async function main(server: string, token: string): Promise<void> {
  const client = new ExampleClient(server, { token });
  const sum: number = await client.add(2, 3);
  console.log(`add: ${sum}`);

  const order: Order = {
    id: "18446744073709551615",
    customer: "00".repeat(32),
    items: [{ name: "tea", qty: 2, tags: ["hot"] }],
    note: null,
    status: { Shipped: "2026-01-02T03:04:05.000006Z" },
    placed: 1_700_000_000_000_000,
    total: 12.5,
  };
  const echoed: Order = await client.echo_order(order);
  console.log(`echo_order: ${JSON.stringify(echoed)}`);

  const ported = new PortedClient(server, { token });
  const uuid: string = await ported.echo_uuid("0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B");
  console.log(`echo_uuid: ${uuid}`);

  const received = new Promise<ProcyonCallResult>((resolve) => {
    void client.subscribe(resolve, "add").then(async (connection) => {
      await client.add(20, 22);
      received.finally(() => connection.stop());
    });
  });
  const result = await received;
  console.log(`subscribe: ${result.fn} ${JSON.stringify(result.value)}`);

  try {
    await client.add_person("", 30);
  } catch (error) {
    if (!(error instanceof ProcyonError)) {
      throw error;
    }
    console.log(`add_person: ${error.status} ${error.detail}`);
  }
}

const [server, token] = process.argv.slice(2);
main(server, token).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
