using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>
/// tests/modules/ported, written as for SpacetimeDB's current Rust bindings with the crate
/// renamed: <c>#[table(accessor = …)]</c>, <c>ctx.sender()</c>, <c>with_tx</c> over
/// <c>&amp;TxContext</c>, <c>duration!</c> into a <c>ScheduleAt</c>, a reducer's own error type, a
/// table without a primary key and a scheduled reducer guarded by <c>ctx.database_identity()</c>,
/// all over HTTP.
/// </summary>
public sealed class PortingTests : OwnServerTest
{
    protected override IEnumerable<(string Database, string Module)> Published => [("ported", "ported")];

    [Fact]
    public async Task A_ported_modules_reducers_procedures_and_errors_work_over_HTTP()
    {
        var (identity, token) = await Server.NewIdentityAsync();

        Assert.Equal(HttpStatusCode.OK, (await CallAsync("join", """["ada"]""", token)).StatusCode);
        var taken = await CallAsync("join", """["ada"]""", token);
        Assert.Equal(HttpStatusCode.UnprocessableEntity, taken.StatusCode);
        Assert.Equal("ada is taken", await DetailAsync(taken));
        Assert.Equal("a name is needed", await DetailAsync(await CallAsync("join", """[""]""", token)));

        Assert.Equal("""[{"name":"ada","score":0}]""", await (await CallAsync("standings", "[]", token)).Content.ReadAsStringAsync());
        Assert.Equal($"\"{identity}\"", await (await CallAsync("whoami", "[]", token)).Content.ReadAsStringAsync());
        Assert.Equal("[1500000,2000000,3600000000,250]", await (await CallAsync("durations", "[]", token)).Content.ReadAsStringAsync());
        Assert.Equal($"""["{identity} joined as ada"]""", await (await CallAsync("events", "[]", token)).Content.ReadAsStringAsync());

        // The database's own identity is the caller of its scheduled runs, so a scheduled
        // reducer can refuse anyone else.
        var database = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData("procyon module ported"u8));
        Assert.Equal($"\"{database}\"", await (await CallAsync("database", "[]", token)).Content.ReadAsStringAsync());
        var refused = await CallAsync("on_tick", """[{"scheduled_id": 9, "scheduled_at": {"Interval": 1000}}]""", token);
        Assert.Equal($"on_tick is the schedule's, not {identity}'s", await DetailAsync(refused));
    }

    [Fact]
    public async Task Enum_variants_with_named_fields_or_several_values_are_anonymous_products_in_JSON()
    {
        Assert.Equal("12", await (await CallAsync("area", """[{"Rect": {"w": 3, "h": 4}}]""")).Content.ReadAsStringAsync());
        Assert.Equal("6", await (await CallAsync("area", """[{"Segment": [-1, 5]}]""")).Content.ReadAsStringAsync());
        Assert.Equal("6", await (await CallAsync("area", """[{"Segment": {"_0": -1, "_1": 5}}]""")).Content.ReadAsStringAsync());
        Assert.Equal(
            """[{"Circle":2},{"Rect":{"w":3,"h":4}},{"Segment":{"_0":-1,"_1":5}},{"Empty":null}]""",
            await (await CallAsync("shapes", "[]")).Content.ReadAsStringAsync());
        var missing = await CallAsync("area", """[{"Rect": {"w": 3}}]""");
        Assert.Equal(HttpStatusCode.BadRequest, missing.StatusCode);
        Assert.Contains("h", await DetailAsync(missing), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ctx_rng_is_seeded_by_the_host_afresh_for_each_call()
    {
        var rolls = new List<int[]>();
        for (var call = 0; call < 2; call++)
        {
            rolls.Add(JsonSerializer.Deserialize<int[]>(await (await CallAsync("dice", "[200]")).Content.ReadAsStringAsync())!);
        }

        Assert.All(rolls, r => Assert.Equal(200, r.Length));
        Assert.All(rolls.SelectMany(r => r), roll => Assert.InRange(roll, 1, 6));
        Assert.Equal(6, rolls[0].Distinct().Count());
        // Two calls, even at the same timestamp, draw different sequences (1 chance in 6^200 to fail).
        Assert.NotEqual(rolls[0], rolls[1]);
        for (var call = 0; call < 2; call++)
        {
            Assert.Equal(HttpStatusCode.OK, (await CallAsync("random_event", "[]")).StatusCode);
        }
        var events = JsonSerializer.Deserialize<string[]>(await (await CallAsync("events", "[]")).Content.ReadAsStringAsync())!;
        Assert.Equal(2, events.Where(e => e.StartsWith("random ", StringComparison.Ordinal)).Distinct().Count());
    }

    [Fact]
    public async Task Lifecycle_reducers_run_as_a_hub_connection_to_the_database_opens_and_closes_with_its_connection_id()
    {
        var (identity, token) = await Server.NewIdentityAsync();
        string connection;
        await using (var hub = await Server.ConnectHubAsync(token, "ported"))
        {
            connection = ConnectionIdOf(await hub.InvokeAsync<JsonElement>("Call", "ported", "my_connection", JsonDocument.Parse("[]").RootElement, null));
            Assert.Equal([$"{connection} {identity}"], await OnlineAsync());

            // Every hub connection has an id of its own; one without ?db= runs no lifecycle reducer.
            await using var plain = await Server.ConnectHubAsync(token);
            Assert.NotEqual(connection, ConnectionIdOf(await plain.InvokeAsync<JsonElement>("Call", "ported", "my_connection", JsonDocument.Parse("[]").RootElement, null)));
            Assert.Single(await OnlineAsync());
            Assert.Equal("null", await (await CallAsync("my_connection", "[]")).Content.ReadAsStringAsync());
        }
        for (var waited = 0; (await OnlineAsync()).Length > 0; waited += 50)
        {
            Assert.True(waited < 10_000, "client_disconnected never removed the connection's row");
            await Task.Delay(50);
        }

        Assert.Equal(HttpStatusCode.OK, (await CallAsync("ban", $"""["{identity}"]""")).StatusCode);
        Assert.Equal($"{identity} is banned already", await DetailAsync(await CallAsync("ban", $"""["{identity}"]""")));
        Assert.Contains($"{identity} is banned", await RefusalAsync(token, "ported"));
        Assert.Empty(await OnlineAsync());
        Assert.Contains("no database named 'nowhere'", await RefusalAsync(token, "nowhere"));
        Assert.Contains("client_connected reducer; it runs only when a hub connection to the database opens", await DetailAsync(await CallAsync("identity_connected", "[]")));
    }

    /// <summary>How the server ends a connection to <paramref name="database"/> that it refuses.</summary>
    private async Task<string> RefusalAsync(string token, string database)
    {
        var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(Server.Address, $"/hubs/procyon?db={database}"), options => options.AccessTokenProvider = () => Task.FromResult<string?>(token))
            .Build();
        await using var _ = hub;
        var closed = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.Closed += error =>
        {
            closed.TrySetResult(error);
            return Task.CompletedTask;
        };
        try
        {
            await hub.StartAsync();
        }
        catch (Exception e)
        {
            return e.Message;
        }
        var error = await closed.Task.WaitAsync(TimeSpan.FromSeconds(30));
        return error?.Message ?? "closed without an error";
    }

    private async Task<string[]> OnlineAsync() =>
        JsonSerializer.Deserialize<string[]>(await (await CallAsync("online", "[]")).Content.ReadAsStringAsync())!;

    /// <summary>A <c>ConnectionId</c> result (a u128: a number, or a decimal string beyond 2^53) in the module's hex.</summary>
    private static string ConnectionIdOf(JsonElement result)
    {
        var value = result.GetProperty("value");
        return (value.ValueKind == JsonValueKind.String ? UInt128.Parse(value.GetString()!) : value.GetUInt64()).ToString("x32");
    }

    [Fact]
    public async Task A_duration_scheduled_row_runs_and_a_table_without_a_primary_key_deletes_by_value()
    {
        Assert.Equal(HttpStatusCode.OK, (await CallAsync("start_ticking", "[]")).StatusCode);
        for (var waited = 0; !(await (await CallAsync("events", "[]")).Content.ReadAsStringAsync()).Contains("tick 1", StringComparison.Ordinal); waited += 50)
        {
            Assert.True(waited < 10_000, "the tick never ran");
            await Task.Delay(50);
        }

        Assert.Equal(HttpStatusCode.OK, (await CallAsync("forget_first_event", "[]")).StatusCode);
        Assert.Equal("[]", await (await CallAsync("events", "[]")).Content.ReadAsStringAsync());
        Assert.Equal("no events", await DetailAsync(await CallAsync("forget_first_event", "[]")));
    }

    private async Task<HttpResponseMessage> CallAsync(string function, string body, string? token = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/databases/ported/call/{function}") { Content = new StringContent(body) };
        if (token is not null)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        }
        return await Server.Http.SendAsync(request);
    }

    private static async Task<string?> DetailAsync(HttpResponseMessage response)
    {
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return problem.RootElement.GetProperty("detail").GetString();
    }
}
