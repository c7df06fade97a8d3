using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// Private by default: another identity or an anonymous caller cannot read a database's private
/// tables, its logs, or the results of calls that are not theirs, through HTTP or the hub.
/// </summary>
public sealed class VisibilityTests : OwnServerTest
{
    private string _owner = "";

    protected override IEnumerable<(string Database, string Module)> Published => [("ledger", "ledger"), ("example", "example")];

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _owner = await Server.OwnerTokenAsync();
    }

    [Fact]
    public async Task Private_tables_are_readable_only_with_the_owners_token_and_the_refusal_names_the_table()
    {
        var (_, stranger) = await Server.NewIdentityAsync();
        const string Private = "SELECT count(*) FROM account CROSS JOIN refusal";

        foreach (var token in (string?[])[null, stranger])
        {
            var problem = await AssertProblemAsync(await Server.SqlAsync("ledger", Private, token), HttpStatusCode.Forbidden);
            Assert.Contains("refusal", problem.Detail());
            Assert.Equal(HttpStatusCode.OK, (await Server.SqlAsync("ledger", "SELECT count(*) FROM account", token)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, (await Server.SqlAsync("ledger", Private, _owner)).StatusCode);
    }

    [Fact]
    public async Task Logs_are_the_owners_alone()
    {
        var (_, stranger) = await Server.NewIdentityAsync();

        await AssertProblemAsync(await Server.Http.GetAsync("/v1/databases/ledger/logs"), HttpStatusCode.Unauthorized);
        await AssertProblemAsync(await GetAsync("/v1/databases/ledger/logs", stranger), HttpStatusCode.Forbidden);
        Assert.Equal(HttpStatusCode.OK, (await GetAsync("/v1/databases/ledger/logs", _owner)).StatusCode);
        await AssertProblemAsync(await Server.Http.GetAsync("/v1/databases/ledger/logs?follow=true"), HttpStatusCode.Unauthorized);
        await AssertProblemAsync(await GetAsync("/v1/databases/ledger/logs?follow=true", stranger), HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task A_private_functions_results_reach_the_caller_and_the_owner_and_nobody_else()
    {
        var (caller, callerToken) = await Server.NewIdentityAsync();
        var (_, strangerToken) = await Server.NewIdentityAsync();
        await using var owner = await Watcher.StartAsync(Server, _owner);
        await using var mine = await Watcher.StartAsync(Server, callerToken);
        await using var stranger = await Watcher.StartAsync(Server, strangerToken);
        await using var anonymous = await Watcher.StartAsync(Server, token: null);

        await CallAsync("increment", "[1]", callerToken);
        await CallAsync("increment", "[2]", token: null);
        // A public function's result, after the private ones: once it arrives, so would have they.
        await CallAsync("ping", "", token: null);

        Assert.Equal([$"increment by {caller}", "ping"], await mine.UntilPingAsync());
        Assert.Equal([$"increment by {caller}", $"increment by {new string('0', 64)}", "ping"], await owner.UntilPingAsync());
        Assert.Equal(["ping"], await stranger.UntilPingAsync());
        Assert.Equal(["ping"], await anonymous.UntilPingAsync());
    }

    [Theory]
    [InlineData("ledger@{owner}", null)]
    [InlineData("ledger", "increment@{owner}")]
    [InlineData("ledger/x", null)]
    public async Task A_subscription_cannot_name_another_identitys_private_group(string db, string? fn)
    {
        var owner = new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(_owner).Subject;
        await using var spy = await Server.ConnectHubAsync();
        var (spyDb, spyFn) = (db.Replace("{owner}", owner, StringComparison.Ordinal), fn?.Replace("{owner}", owner, StringComparison.Ordinal));

        await Assert.ThrowsAsync<HubException>(() => spy.InvokeAsync("Subscribe", spyDb, spyFn));
        await Assert.ThrowsAsync<HubException>(() => spy.InvokeAsync("Unsubscribe", spyDb, spyFn));
        await using var stream = spy.StreamAsync<JsonElement>("Results", spyDb, spyFn).GetAsyncEnumerator();
        await Assert.ThrowsAsync<HubException>(async () => await stream.MoveNextAsync());
        await using var watcher = await Watcher.StartAsync(Server, token: null);
        await CallAsync("increment", "[1]", _owner);
        await CallAsync("ping", "", token: null);
        Assert.Equal(["ping"], await watcher.UntilPingAsync());
    }

    [Fact]
    public async Task Scheduled_runs_of_a_private_target_reach_the_owner_only()
    {
        var (caller, callerToken) = await Server.NewIdentityAsync();
        await using var owner = await Watcher.StartAsync(Server, _owner);
        await using var scheduler = await Watcher.StartAsync(Server, callerToken);

        await CallAsync("schedule_doomed", "", callerToken);
        var module = Runtime.CallDispatcher.ModuleIdentity("ledger").ToString();
        Assert.Equal([$"schedule_doomed by {caller}", $"fail_doomed by {module}"], await owner.UntilAsync($"fail_doomed by {module}"));
        await CallAsync("ping", "", token: null);

        Assert.Equal([$"schedule_doomed by {caller}", "ping"], await scheduler.UntilPingAsync());
    }

    [Fact]
    public async Task Results_streams_carry_only_what_the_reader_may_see()
    {
        var (_, strangerToken) = await Server.NewIdentityAsync();
        await using var stranger = await Server.ConnectHubAsync(strangerToken);
        await using var caller = await Server.ConnectHubAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await using var results = stranger.StreamAsync<JsonElement>("Results", "ledger", null, timeout.Token).GetAsyncEnumerator(timeout.Token);
        var first = results.MoveNextAsync().AsTask();
        // The stream starts when the server gets the invocation: ping until it carries a ping.
        while (!first.IsCompleted)
        {
            await CallAsync("ping", "", token: null);
            await Task.WhenAny(first, Task.Delay(100));
        }
        Assert.True(await first);

        await CallAsync("increment", "[1]", token: null);
        await CallAsync("increment", "[1]", _owner);
        await caller.InvokeAsync<JsonElement>("Call", "ledger", "ping", null, "last");

        var seen = new List<string>();
        while (await results.MoveNextAsync() && results.Current.GetProperty("requestId").GetString() != "last")
        {
            seen.Add(results.Current.GetProperty("fn").GetString()!);
        }
        Assert.All(seen, fn => Assert.Equal("ping", fn));
    }

    [Fact]
    public async Task The_hub_refuses_a_bad_token_at_negotiate_instead_of_taking_it_as_anonymous()
    {
        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => Server.ConnectHubAsync("not.a.token"));

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
    }

    [Fact]
    public async Task A_server_without_anonymous_calls_refuses_them_over_the_hub_too()
    {
        await using var strict = await TestServer.StartAsync(Database, "--Procyon:Auth:AllowAnonymousCalls=false");
        await using var anonymous = await strict.ConnectHubAsync();
        var (_, token) = await strict.NewIdentityAsync();
        await using var known = await strict.ConnectHubAsync(token);

        var refused = await anonymous.InvokeAsync<JsonElement>("Call", "example", "add", JsonDocument.Parse("[1, 2]").RootElement, null);
        var answered = await known.InvokeAsync<JsonElement>("Call", "example", "add", JsonDocument.Parse("[1, 2]").RootElement, null);

        Assert.Equal("error", refused.GetProperty("status").GetString());
        Assert.Contains("requires a token", refused.GetProperty("error").GetString());
        Assert.Equal(3, answered.GetProperty("value").GetInt32());
        await AssertProblemAsync(await strict.CallAsync("example", "add", "[1, 2]"), HttpStatusCode.Unauthorized);
    }

    private async Task<HttpResponseMessage> GetAsync(string path, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await Server.Http.SendAsync(request);
    }

    private async Task CallAsync(string function, string json, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/databases/ledger/call/{function}") { Content = new StringContent(json) };
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        using var response = await Server.Http.SendAsync(request);
        Assert.True(response.IsSuccessStatusCode, $"{function}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    /// <summary>A hub connection subscribed to ledger, noting each result as "fn by caller" (or "ping").</summary>
    private sealed class Watcher : IAsyncDisposable
    {
        private readonly Channel<string> _seen = Channel.CreateUnbounded<string>();

        private Watcher(HubConnection hub)
        {
            Hub = hub;
            hub.On<JsonElement>("Result", result =>
            {
                var fn = result.GetProperty("fn").GetString()!;
                _seen.Writer.TryWrite(fn == "ping" ? fn : $"{fn} by {result.GetProperty("caller").GetString()}");
            });
        }

        private HubConnection Hub { get; }

        public static async Task<Watcher> StartAsync(TestServer server, string? token)
        {
            var watcher = new Watcher(await server.ConnectHubAsync(token));
            await watcher.Hub.InvokeAsync("Subscribe", "ledger", null);
            return watcher;
        }

        public Task<List<string>> UntilPingAsync() => UntilAsync("ping");

        /// <summary>Every result seen until <paramref name="last"/> (included); fails after 10 s.</summary>
        public async Task<List<string>> UntilAsync(string last)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            var seen = new List<string>();
            await foreach (var entry in _seen.Reader.ReadAllAsync(timeout.Token))
            {
                seen.Add(entry);
                if (entry == last)
                {
                    return seen;
                }
            }
            return seen;
        }

        public ValueTask DisposeAsync() => Hub.DisposeAsync();
    }
}
