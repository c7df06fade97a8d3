using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>
/// A procedure sleeping past <c>DurableSleepAfter</c> survives its server: SIGKILLed or stopped,
/// another server (or the same one restarted) wakes it from its snapshot in Postgres.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class DurableCallTests
{
    private const string Lease = "--Procyon:Runtime:DurableLease=00:00:02";

    /// <summary><c>visits_twice</c> of 256 KiB of heap: the sum of 0..65535 and the count.</summary>
    private const string HeapAnswer = "\"2147450880 65536\"";

    [Fact]
    public async Task A_call_sleeping_on_a_killed_server_wakes_once_on_the_next_with_its_memory_and_its_work_done_once()
    {
        await using var database = await TestDatabase.CreateAsync();
        var (id, owner) = await KilledWhileSleepingAsync(database, (first, _) => first.CallAsync("ledger", "visits_twice", "[6000, 256]"));
        await using var second = await ServerProcess.StartAsync(database, Lease);
        // The owner hears of the anonymous call's end, from the server that woke it.
        await using var hub = await second.ConnectHubAsync(owner);
        var pushed = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        hub.On<JsonElement>("Result", result => _ = result.GetProperty("callId").GetString() == id && pushed.TrySetResult(result));
        await hub.InvokeAsync("Subscribe", "ledger", "visits_twice");

        var ended = await EndedAsync(second, id);
        Assert.Equal("ok", ended.GetProperty("status").GetString());
        Assert.Equal(HeapAnswer, ended.GetProperty("value").GetRawText());
        Assert.Equal(HeapAnswer, (await pushed.Task.WaitAsync(TimeSpan.FromSeconds(10))).GetProperty("value").GetRawText());
        await AssertVisitedOnceEachAsync(database);
        // One sleep of six seconds, woken by the second server.
        var slept = SleptMicros(await second.LogsAsync("ledger", owner));
        Assert.InRange(slept, 6_000_000, 12_000_000);
    }

    [Fact]
    public async Task A_stopping_server_hands_its_sleeping_call_over_and_the_caller_is_told_where_the_result_will_be()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var first = await ServerProcess.StartAsync(database, Lease);
        (await first.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        await using var second = await ServerProcess.StartAsync(database, Lease);
        var call = first.CallAsync("ledger", "visits_twice", "[3000, 16]");
        var id = await SleepingCallAsync(database);

        var stopping = first.StopAsync();
        using var response = await call;
        await stopping;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains($"GET /v1/calls/{id}", await response.Content.ReadAsStringAsync());
        var ended = await EndedAsync(second, id);
        Assert.Equal("ok", ended.GetProperty("status").GetString());
        await AssertVisitedOnceEachAsync(database);
    }

    [Fact]
    public async Task A_durable_call_that_ends_where_it_slept_answers_and_keeps_its_result_while_a_short_nap_is_not_kept()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database, Lease);
        (await server.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();

        using var durable = await server.CallAsync("ledger", "visits_twice", "[1500, 256]");
        using var nap = await server.CallAsync("ledger", "visits_twice", "[100, 1]");

        Assert.Equal(HeapAnswer, await durable.Content.ReadAsStringAsync());
        var id = durable.Headers.GetValues("Procyon-Call-Id").Single();
        var kept = await server.Http.GetFromJsonAsync<JsonElement>($"/v1/calls/{id}");
        Assert.Equal("ok", kept.GetProperty("status").GetString());
        Assert.Equal(HeapAnswer, kept.GetProperty("value").GetRawText());
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM procyon.sleeping_calls"));
        Assert.Equal(HttpStatusCode.OK, nap.StatusCode);
        using var notKept = await server.Http.GetAsync($"/v1/calls/{nap.Headers.GetValues("Procyon-Call-Id").Single()}");
        Assert.Equal(HttpStatusCode.NotFound, notKept.StatusCode);
        // Another identity cannot read it.
        var (_, stranger) = await server.NewIdentityAsync();
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/calls/{id}");
        request.Headers.Authorization = new("Bearer", stranger);
        using var refused = await server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
    }

    [Fact]
    public async Task A_damaged_snapshot_ends_its_call_with_an_error_and_the_server_serves_on()
    {
        await using var database = await TestDatabase.CreateAsync();
        var (id, _) = await KilledWhileSleepingAsync(database, (first, _) => first.CallAsync("ledger", "visits_twice", "[2000, 16]"));
        await database.ExecuteAsync("UPDATE procyon.sleeping_calls SET snapshot = '\\x78da0102'");

        await using var second = await ServerProcess.StartAsync(database, Lease);

        var ended = await EndedAsync(second, id);
        Assert.Equal("error", ended.GetProperty("status").GetString());
        Assert.Contains("snapshot", ended.GetProperty("error").GetString());
        Assert.Equal("\"2147450880 65536\"", await (await second.CallAsync("ledger", "visits_twice", "[0, 256]")).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_sleeping_call_of_a_deleted_database_never_wakes_on_whatever_is_published_under_its_name_next()
    {
        await using var database = await TestDatabase.CreateAsync();
        var (id, owner) = await KilledWhileSleepingAsync(database, (first, _) => first.CallAsync("ledger", "visits_twice", "[3000, 16]"));
        await using var second = await ServerProcess.StartAsync(database, Lease);

        Assert.Equal(HttpStatusCode.NoContent, (await second.DeleteAsync("ledger", owner)).StatusCode);
        // Another identity claims the name with the very same bytes.
        (await second.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        await Task.Delay(TimeSpan.FromSeconds(5));

        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM db_ledger.visit"));
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM procyon.sleeping_calls"));
        using var gone = await second.Http.GetAsync($"/v1/calls/{id}");
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task An_idempotency_key_runs_a_call_once_however_often_and_however_concurrently_it_is_sent()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database, Lease);
        (await server.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        var (_, token) = await server.NewIdentityAsync();

        var first = KeyedCallAsync(server, token, "order-1", "[1500, 256]");
        var second = KeyedCallAsync(server, token, "order-1", "[1500, 256]");
        using var answers = new Disposables(await first, await second);
        using var retry = await KeyedCallAsync(server, token, "order-1", "[1500, 256]");
        using var otherArguments = await KeyedCallAsync(server, token, "order-1", "[1500, 16]");
        var (_, stranger) = await server.NewIdentityAsync();
        using var strangersOwn = await KeyedCallAsync(server, stranger, "order-1", "[0, 1]");

        foreach (var answer in answers.Responses.Append(retry))
        {
            Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
            Assert.Equal(HeapAnswer, await answer.Content.ReadAsStringAsync());
        }
        Assert.Single(answers.Responses.Append(retry).Select(r => r.Headers.GetValues("Procyon-Call-Id").Single()).Distinct());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, otherArguments.StatusCode);
        Assert.Equal("\"32640 256\"", await strangersOwn.Content.ReadAsStringAsync());
        await AssertVisitedOnceEachAsync(database, strangers: 1);
    }

    [Fact]
    public async Task The_hubs_CallOnce_runs_a_call_once_per_key_like_HTTP()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database, Lease);
        (await server.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        var (_, token) = await server.NewIdentityAsync();
        await using var hub = await server.ConnectHubAsync(token);
        var arguments = JsonDocument.Parse("[1500, 256]").RootElement;

        var results = await Task.WhenAll(
            hub.InvokeAsync<JsonElement>("CallOnce", "ledger", "visits_twice", arguments, "hub-1", null),
            hub.InvokeAsync<JsonElement>("CallOnce", "ledger", "visits_twice", arguments, "hub-1", "second"));
        using var overHttp = await KeyedCallAsync(server, token, "hub-1", "[1500, 256]");
        var other = await hub.InvokeAsync<JsonElement>("CallOnce", "ledger", "visits_twice", JsonDocument.Parse("[0, 1]").RootElement, "hub-1", null);

        Assert.All(results, result => Assert.Equal(HeapAnswer, result.GetProperty("value").GetRawText()));
        Assert.Single(results.Select(result => result.GetProperty("callId").GetString()).Distinct());
        Assert.Equal(HeapAnswer, await overHttp.Content.ReadAsStringAsync());
        Assert.Equal("error", other.GetProperty("status").GetString());
        Assert.Contains("idempotency key was used for another request", other.GetProperty("error").GetString());
        await AssertVisitedOnceEachAsync(database);
    }

    [Fact]
    public async Task A_call_made_with_respond_async_is_answered_at_once_and_its_result_is_kept()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database, Lease);
        using var accepted = await PublishAndCallAsyncAsync(server, "ledger", "visits_twice", "[500, 256]");

        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        var location = accepted.Headers.Location!.ToString();
        var ended = await EndedAsync(server, location["/v1/calls/".Length..]);
        Assert.Equal("ok", ended.GetProperty("status").GetString());
        Assert.Equal(HeapAnswer, ended.GetProperty("value").GetRawText());
    }

    [Fact]
    public async Task A_kept_call_whose_server_died_while_it_ran_ends_with_an_error_once_its_lease_has_passed()
    {
        await using var database = await TestDatabase.CreateAsync();
        string id;
        // Its nap stays in memory: the call is running, not asleep in Postgres, when its server dies.
        await using (var first = await ServerProcess.StartAsync(database, Lease, "--Procyon:Runtime:DurableSleepAfter=01:00:00"))
        {
            using var accepted = await PublishAndCallAsyncAsync(first, "faulty", "naps", "[1, 60000]");
            id = accepted.Headers.Location!.ToString()["/v1/calls/".Length..];
            await first.KillAsync();
        }

        await using var second = await ServerProcess.StartAsync(database, Lease);

        var ended = await EndedAsync(second, id);
        Assert.Equal("error", ended.GetProperty("status").GetString());
        Assert.Contains("stopped before the call ended", ended.GetProperty("error").GetString());
    }

    /// <summary>A module's error text with a zero byte, which a Postgres text column refuses, is kept all the same.</summary>
    [Fact]
    public async Task A_kept_call_whose_error_holds_a_zero_byte_ends_like_any_other()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database, Lease);
        using var accepted = await PublishAndCallAsyncAsync(server, "faulty", "panics", "[\"zero\\u0000byte\"]");
        var ended = await EndedAsync(server, accepted.Headers.Location!.ToString()["/v1/calls/".Length..]);

        Assert.Equal("error", ended.GetProperty("status").GetString());
        Assert.Contains("zero\uFFFDbyte", ended.GetProperty("error").GetString());
    }

    [Fact]
    public async Task A_retry_with_the_same_key_after_the_server_died_mid_sleep_gets_the_one_result()
    {
        await using var database = await TestDatabase.CreateAsync();
        // A token is good on every server: they share the signing key.
        var (_, token) = await KilledWhileSleepingAsync(database, (first, owner) => KeyedCallAsync(first, owner, "payment-7", "[3000, 256]"));
        await using var second = await ServerProcess.StartAsync(database, Lease);

        using var retried = await KeyedCallAsync(second, token, "payment-7", "[3000, 256]");

        Assert.Equal(HttpStatusCode.OK, retried.StatusCode);
        Assert.Equal(HeapAnswer, await retried.Content.ReadAsStringAsync());
        await AssertVisitedOnceEachAsync(database);
    }

    [Fact]
    public async Task A_sleeping_call_cancelled_by_its_caller_ends_at_once_and_never_does_what_follows_its_sleep()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database, Lease);
        var (call, id) = await SleepingAMinuteAsync(database, server);
        var (_, stranger) = await server.NewIdentityAsync();

        using var refused = await CancelAsync(server, id, stranger);
        using var cancelled = await CancelAsync(server, id, token: null);
        using var answer = await call;
        using var again = await CancelAsync(server, id, token: null);

        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        Assert.Equal(HttpStatusCode.OK, cancelled.StatusCode);
        Assert.Equal("cancelled", (await cancelled.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("status").GetString());
        Assert.Equal(HttpStatusCode.Conflict, answer.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("cancelled", (await server.Http.GetFromJsonAsync<JsonElement>($"/v1/calls/{id}")).GetProperty("status").GetString());
        await AssertCutAtItsSleepAsync(database);
    }

    [Fact]
    public async Task Calls_asleep_across_an_optimization_and_a_republish_wake_elsewhere_on_the_code_they_slept_in()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var first = await ServerProcess.StartAsync(database, Lease, "--Procyon:Runtime:OptimizeAfterPublish=true");
        (await first.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        // One asleep on the quick rewrite, one on the optimized rewrite that replaced it.
        var onQuick = first.CallAsync("ledger", "visits_twice", "[7000, 256]");
        await ScheduledTablesTests.EventuallyAsync(async () => await database.ScalarAsync<bool>("SELECT optimized FROM procyon.databases WHERE name = 'ledger'"));
        var onOptimized = first.CallAsync("ledger", "visits_twice", "[4000, 16]");
        await ScheduledTablesTests.EventuallyAsync(async () => await database.ScalarAsync<long>("SELECT count(DISTINCT sha256) FROM procyon.sleeping_calls") == 2);
        var ids = await database.QueryAsync("SELECT id::text FROM procyon.sleeping_calls ORDER BY wake_at DESC");

        (await first.PublishBytesAsync("ledger", SecondVersion())).EnsureSuccessStatusCode();
        await first.KillAsync();
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => Task.WhenAll(onQuick, onOptimized));
        await using var second = await ServerProcess.StartAsync(database, Lease);

        Assert.Equal(HeapAnswer, (await EndedAsync(second, ids[0])).GetProperty("value").GetRawText());
        Assert.Equal("\"8386560 4096\"", (await EndedAsync(second, ids[1])).GetProperty("value").GetRawText());
        Assert.Equal(["after 2", "before 2"], await database.QueryAsync("SELECT phase || ' ' || count(*) FROM db_ledger.visit GROUP BY phase ORDER BY phase"));
        Assert.Equal(HeapAnswer, await (await second.CallAsync("ledger", "visits_twice", "[0, 256]")).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_republish_with_cancelSleeping_cancels_the_calls_asleep_on_the_old_code()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database, Lease);
        var (call, id) = await SleepingAMinuteAsync(database, server);

        using var republished = await server.PublishBytesAsync("ledger", SecondVersion(), "?cancelSleeping=true");
        using var answer = await call;

        republished.EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.Conflict, answer.StatusCode);
        var ended = await server.Http.GetFromJsonAsync<JsonElement>($"/v1/calls/{id}");
        Assert.Equal("cancelled", ended.GetProperty("status").GetString());
        Assert.Contains("republished with ?cancelSleeping=true", ended.GetProperty("error").GetString());
        await AssertCutAtItsSleepAsync(database);
    }

    /// <summary>Publishes a test module and calls one of its functions with <c>Prefer: respond-async</c>.</summary>
    private static async Task<HttpResponseMessage> PublishAndCallAsyncAsync(ServerHandle server, string module, string function, string arguments)
    {
        (await server.PublishAsync(module, module)).EnsureSuccessStatusCode();
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/databases/{module}/call/{function}") { Content = new StringContent(arguments) };
        request.Headers.Add("Prefer", "respond-async, wait=0");
        return await server.Http.SendAsync(request);
    }

    /// <summary>Publishes the ledger module and makes a call that sleeps a minute; returns it and its id once it is asleep in Postgres.</summary>
    private static async Task<(Task<HttpResponseMessage> Call, string Id)> SleepingAMinuteAsync(TestDatabase database, ServerHandle server)
    {
        (await server.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        var call = server.CallAsync("ledger", "visits_twice", "[60000, 16]");
        return (call, await SleepingCallAsync(database));
    }

    /// <summary>A cancelled call did what came before its sleep, nothing after, and left no snapshot.</summary>
    private static async Task AssertCutAtItsSleepAsync(TestDatabase database)
    {
        Assert.Equal(["before 1"], await database.QueryAsync("SELECT phase || ' ' || count(*) FROM db_ledger.visit GROUP BY phase"));
        Assert.Equal(0, await database.ScalarAsync<long>("SELECT count(*) FROM procyon.sleeping_calls"));
    }

    /// <summary>The ledger module with a custom section more: other bytes, other rewrites, the same tables and behaviour.</summary>
    private static byte[] SecondVersion()
    {
        byte[] body = [.. "\u000cprocyon-test"u8, .. "v2"u8];
        return [.. File.ReadAllBytes(Modules.PathOf("ledger")), 0, (byte)body.Length, .. body];
    }

    private static async Task<HttpResponseMessage> CancelAsync(ServerHandle server, string id, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Delete, $"/v1/calls/{id}");
        if (token is not null)
        {
            request.Headers.Authorization = new("Bearer", token);
        }
        return await server.Http.SendAsync(request);
    }

    private static async Task<HttpResponseMessage> KeyedCallAsync(ServerHandle server, string token, string key, string arguments)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/databases/ledger/call/visits_twice") { Content = new StringContent(arguments) };
        request.Headers.Authorization = new("Bearer", token);
        request.Headers.Add("Idempotency-Key", key);
        return await server.Http.SendAsync(request);
    }

    private sealed class Disposables(params HttpResponseMessage[] responses) : IDisposable
    {
        public IReadOnlyList<HttpResponseMessage> Responses => responses;

        public void Dispose()
        {
            foreach (var response in responses)
            {
                response.Dispose();
            }
        }
    }

    /// <summary>
    /// A server that publishes the ledger module and makes <paramref name="call"/> (given the
    /// publisher's token), SIGKILLed once the call is asleep in Postgres; returns the call's id and
    /// the publisher's token.
    /// </summary>
    private static async Task<(string Id, string Owner)> KilledWhileSleepingAsync(TestDatabase database, Func<ServerProcess, string, Task<HttpResponseMessage>> call)
    {
        await using var first = await ServerProcess.StartAsync(database, Lease);
        (await first.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        var owner = await first.OwnerTokenAsync();
        var calling = call(first, owner);
        var id = await SleepingCallAsync(database);
        await first.KillAsync();
        await Assert.ThrowsAnyAsync<HttpRequestException>(() => calling);
        return (id, owner);
    }

    /// <summary>The id of the one call asleep in Postgres, once it is there.</summary>
    private static async Task<string> SleepingCallAsync(TestDatabase database)
    {
        await ScheduledTablesTests.EventuallyAsync(async () => await database.ScalarAsync<long>("SELECT count(*) FROM procyon.sleeping_calls") == 1);
        return (await database.QueryAsync("SELECT id::text FROM procyon.sleeping_calls")).Single();
    }

    /// <summary>Waits for call <paramref name="id"/> to end, wherever it runs, and returns it as <c>GET /v1/calls/{id}</c> tells.</summary>
    internal static async Task<JsonElement> EndedAsync(ServerHandle server, string id)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            using var response = await server.Http.GetAsync($"/v1/calls/{id}");
            if (response.IsSuccessStatusCode && (await response.Content.ReadFromJsonAsync<JsonElement>()) is var call && call.GetProperty("status").GetString() is not ("sleeping" or "running"))
            {
                return call;
            }
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), $"call {id} did not end within 30 s");
            await Task.Delay(100);
        }
    }

    /// <param name="strangers">Calls that did not sleep long, made besides.</param>
    private static async Task AssertVisitedOnceEachAsync(TestDatabase database, int strangers = 0) =>
        Assert.Equal([$"after {1 + strangers}", $"before {1 + strangers}"], await database.QueryAsync("SELECT phase || ' ' || count(*) FROM db_ledger.visit GROUP BY phase ORDER BY phase"));

    private static long SleptMicros(string logs)
    {
        var match = System.Text.RegularExpressions.Regex.Match(logs, @"slept from (\d+) to (\d+)");
        Assert.True(match.Success, $"no sleep in the logs: {logs}");
        return long.Parse(match.Groups[2].Value) - long.Parse(match.Groups[1].Value);
    }
}
