using Procyon.Clients.Example;

// Uses the generated client the way an application would; ClientBindingsTests checks what it prints.
using var http = new HttpClient();
var client = new ExampleClient(http, new Uri(args[0]), args[1]);
Console.WriteLine($"add: {await client.AddAsync(2, 3)}");

var order = new Order(
    ulong.MaxValue,
    new string('0', 64),
    [new Item("tea", 2, ["hot"])],
    null,
    new Status.Shipped(DateTimeOffset.Parse("2026-01-02T03:04:05.000006Z", System.Globalization.CultureInfo.InvariantCulture)),
    DateTimeOffset.FromUnixTimeSeconds(1_700_000_000),
    12.5);
var echoed = await client.EchoOrderAsync(order);
Console.WriteLine($"echo_order: {echoed.Id} {echoed.Items[0].Name} {echoed.Status} {echoed.Placed:O} same: {echoed.Id == order.Id && echoed.Status == order.Status && echoed.Placed == order.Placed}");

// A Guid goes as its text, never as System.Guid's mixed-endian bytes.
var ported = new Procyon.Clients.Ported.PortedClient(http, new Uri(args[0]), args[1]);
var uuid = Guid.Parse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
var holder = await ported.TicketAsync(uuid);
Console.WriteLine($"echo_uuid: {await ported.EchoUuidAsync(uuid)} ticket: {holder ?? "none"}");

var received = new TaskCompletionSource<ProcyonCallResult>(TaskCreationOptions.RunContinuationsAsynchronously);
await using (var connection = await client.SubscribeAsync(result => received.TrySetResult(result), "add"))
{
    await client.AddAsync(20, 22);
    var result = await received.Task.WaitAsync(TimeSpan.FromSeconds(30));
    Console.WriteLine($"subscribe: {result.Fn} {result.Value}");
}

try
{
    await client.AddPersonAsync("", 30);
}
catch (ProcyonException e)
{
    Console.WriteLine($"add_person: {e.Status} {e.Message}");
}
