using System.Net;
using System.Text.Json;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>
/// A server of today runs what tenants published with earlier SDKs: tests/modules/legacy holds
/// modules as they were built, importing what the SDK no longer does (<c>table_scan</c>) and
/// describing themselves in the formats of their day.
/// </summary>
public sealed class CompatibilityTests : OwnServerTest
{
    [Fact]
    public async Task A_module_built_before_iter_streamed_publishes_and_reads_its_tables()
    {
        var wasm = await File.ReadAllBytesAsync(Path.Combine(Modules.RepositoryRoot(), "tests", "modules", "legacy", "ported-2026-11-30.wasm"));

        Assert.Equal(HttpStatusCode.Created, (await Server.PublishBytesAsync("legacy", wasm)).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("legacy", "join", """["ada"]""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("legacy", "random_event", "[]")).StatusCode);
        // events() and join's name check read whole tables through table_scan.
        var events = JsonSerializer.Deserialize<string[]>(await (await Server.CallAsync("legacy", "events", "[]")).Content.ReadAsStringAsync())!;
        Assert.Equal(2, events.Length);
        Assert.Contains(events, e => e.EndsWith(" joined as ada", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await Server.CallAsync("legacy", "join", """["ada"]""")).StatusCode);
    }
}
