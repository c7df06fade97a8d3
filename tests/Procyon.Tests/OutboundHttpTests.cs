using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Procyon.Runtime.Outbound;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// Procedures' <c>ctx.http</c> against a real local web server: requests and responses make the
/// round trip; timeouts, size caps and the per-database share hold; private addresses are refused
/// however they are reached (a literal, a redirect) unless the server allows them; a module's own
/// host list holds; nothing is sent inside a transaction; and waiting requests hold no thread.
/// </summary>
public sealed class OutboundHttpTests() : OwnServerTest(
    "--Procyon:Http:AllowedHosts:0=127.0.0.1",
    "--Procyon:Http:MaxResponseBytes=65536",
    "--Procyon:Http:MaxRequestBytes=1024",
    "--Procyon:Http:MaxConcurrentPerDatabase=64")
{
    private LocalWebServer? _web;

    private LocalWebServer Web => _web ?? throw new InvalidOperationException("not started");

    protected override IEnumerable<(string Database, string Module)> Published => [("outbound", "outbound"), ("example", "example")];

    public override async Task InitializeAsync()
    {
        _web = await LocalWebServer.StartAsync();
        await base.InitializeAsync();
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        await Web.DisposeAsync();
    }

    [Fact]
    public async Task A_get_and_a_post_carry_method_headers_and_body_both_ways()
    {
        var hello = await GetAsync($"{Web.Url}/hello");
        var body = """{"greeting":"héllo"}""";
        var echoed = await SendAsync("POST", $"{Web.Url}/echo", ["Content-Type: application/json", "X-Custom: abc"], Encoding.UTF8.GetBytes(body));

        Assert.Equal(200, hello.GetProperty("status").GetInt32());
        Assert.Equal("hello", hello.GetProperty("body").GetString());
        Assert.Contains("x-reply: yes", Headers(hello));
        Assert.Equal(201, echoed.GetProperty("status").GetInt32());
        Assert.Equal(body, echoed.GetProperty("body").GetString());
        Assert.Contains("x-seen-method: POST", Headers(echoed));
        Assert.Contains("x-seen-custom: abc", Headers(echoed));
        Assert.Contains("x-seen-content-type: application/json", Headers(echoed));
        Assert.Equal($"200 OK hello", await ExampleFetchAsync($"{Web.Url}/hello"));
    }

    [Fact]
    public async Task A_timeout_ends_the_request_and_a_response_or_body_over_the_cap_is_refused()
    {
        var stopwatch = Stopwatch.StartNew();
        var slow = await SendAsync("GET", $"{Web.Url}/slow?ms=10000", [], [], timeoutMs: 300);
        var waited = stopwatch.Elapsed;
        var declared = await GetAsync($"{Web.Url}/large?bytes=100000&chunked=false");
        var streamed = await GetAsync($"{Web.Url}/large?bytes=100000&chunked=true");
        var justUnder = await GetAsync($"{Web.Url}/large?bytes=65536&chunked=true");
        var requestsBefore = Web.Requests;
        var bigBody = await SendAsync("POST", $"{Web.Url}/echo", [], new byte[2000]);
        var bigHead = await SendAsync("GET", $"{Web.Url}/hello", [$"X-Big: {new string('a', 70_000)}"], []);

        AssertFailed(slow, "timeout", "had no whole response within its timeout of 0.3 s");
        Assert.InRange(waited.TotalSeconds, 0.3, 5);
        AssertFailed(declared, "too_large", "larger than Procyon:Http:MaxResponseBytes (65536 bytes)");
        AssertFailed(streamed, "too_large", "larger than Procyon:Http:MaxResponseBytes (65536 bytes)");
        Assert.Equal(65536, justUnder.GetProperty("body").GetString()!.Length);
        AssertFailed(bigBody, "too_large", "the request's body of 2000 bytes is larger than Procyon:Http:MaxRequestBytes (1024)");
        AssertFailed(bigHead, "too_large", "the request's method, URI and headers take");
        Assert.Equal(requestsBefore, Web.Requests);
    }

    [Theory]
    [InlineData("http://169.254.169.254/latest/meta-data/")]
    [InlineData("http://10.20.30.40/")]
    [InlineData("http://192.168.1.1/")]
    [InlineData("http://100.64.0.1/")]
    [InlineData("http://0.0.0.0/")]
    [InlineData("http://[::1]/")]
    [InlineData("http://[::ffff:169.254.169.254]/")]
    [InlineData("http://[fd00::1]/")]
    public async Task Private_addresses_are_refused_with_a_clear_error_and_the_server_keeps_serving(string url)
    {
        var answer = await ExampleFetchAsync(url);

        Assert.StartsWith("error: GET ", answer);
        Assert.Contains("which is not a public address", answer);
        Assert.Equal("3", await (await Server.CallAsync("example", "add", "[1,2]")).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Loopback_is_refused_unless_the_server_allows_it_and_a_module_reaches_only_the_hosts_it_lists()
    {
        await using var strict = await TestServer.StartAsync(Database);

        var refused = await strict.CallAsync("example", "fetch", JsonSerializer.Serialize(new[] { $"{Web.Url}/hello" }));
        var otherLoopback = await ExampleFetchAsync($"http://127.0.0.2:{Web.Port}/hello");
        var unlisted = await GetAsync($"http://localhost:{Web.Port}/hello");

        Assert.Contains("127.0.0.1 is 127.0.0.1, which is not a public address", await refused.Content.ReadAsStringAsync());
        Assert.Contains("which is not a public address", otherLoopback);
        AssertFailed(unlisted, "refused", "localhost is not among the hosts the module's allowed_http_hosts! lists (127.0.0.1, *.localhost)");
        Assert.Equal(0, Web.Requests);
    }

    [Fact]
    public async Task Redirects_are_followed_and_each_hop_is_checked()
    {
        var followed = await ExampleFetchAsync($"{Web.Url}/redirect?to={Uri.EscapeDataString($"{Web.Url}/hello")}");
        var toMetadata = await ExampleFetchAsync($"{Web.Url}/redirect?to={Uri.EscapeDataString("http://169.254.169.254/latest/meta-data/")}");
        var toOtherLoopback = await ExampleFetchAsync($"{Web.Url}/redirect?to={Uri.EscapeDataString($"http://127.0.0.2:{Web.Port}/hello")}");
        var toUnlisted = await GetAsync($"{Web.Url}/redirect?to={Uri.EscapeDataString($"http://localhost:{Web.Port}/hello")}");
        var toFtp = await GetAsync($"{Web.Url}/redirect?to={Uri.EscapeDataString("ftp://127.0.0.1/file")}");

        Assert.Equal("200 OK hello", followed);
        Assert.Contains("169.254.169.254 is 169.254.169.254, which is not a public address", toMetadata);
        Assert.Contains("127.0.0.2 is 127.0.0.2, which is not a public address", toOtherLoopback);
        AssertFailed(toUnlisted, "refused", "localhost is not among the hosts the module's allowed_http_hosts! lists");
        AssertFailed(toFtp, "refused", "only http and https are followed");
    }

    [Fact]
    public async Task Bad_requests_and_unreachable_hosts_are_errors_the_module_can_handle()
    {
        AssertFailed(await GetAsync("ftp://127.0.0.1/file"), "invalid_request", "'ftp://127.0.0.1/file' is not an absolute http or https URI");
        AssertFailed(await GetAsync("http://127.0.0.1:1/"), "network", "GET http://127.0.0.1:1/ failed: Connection refused");
        AssertFailed(await SendAsync("GET", $"{Web.Url}/hello", ["X-Bad: a\u0001b"], []), "invalid_request", "failed to parse header value");
        var garbage = await AssertProblemAsync(await Server.CallAsync("outbound", "garbage_request", "[]"), HttpStatusCode.InternalServerError);
        Assert.Contains("the module's http_request does not decode", garbage.Detail());
        Assert.Equal("3", await (await Server.CallAsync("outbound", "add", "[1,2]")).Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("request_in_tx")]
    [InlineData("request_in_reducer")]
    public async Task A_request_inside_with_tx_or_a_reducer_fails_the_call_at_once(string function)
    {
        var stopwatch = Stopwatch.StartNew();

        var problem = await AssertProblemAsync(await Server.CallAsync("outbound", function, "[]"), HttpStatusCode.InternalServerError);

        Assert.Contains("http_request was called inside a reducer or with_tx, where it would hold the transaction open while it waits for the response", problem.Detail());
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(2), $"took {stopwatch.Elapsed}");
        Assert.Equal("3", await (await Server.CallAsync("outbound", "add", "[1,2]")).Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_durable_call_whose_server_stops_during_a_request_sends_it_again_from_its_last_sleep()
    {
        await using var first = await ServerProcess.StartAsync(Database, "--Procyon:Http:AllowedHosts:0=127.0.0.1");
        var call = first.CallAsync("outbound", "nap_then_get", JsonSerializer.Serialize(new[] { $"{Web.Url}/slow?ms=2000" }));
        await ScheduledTablesTests.EventuallyAsync(() => Task.FromResult(Web.Requests == 1));

        var stopping = first.StopAsync();
        using var response = await call;
        await stopping;

        var detail = (await AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable)).Detail();
        var id = Regex.Match(detail, "GET /v1/calls/([0-9a-f-]+)").Groups[1].Value;
        var ended = await DurableCallTests.EndedAsync(Server, id);
        Assert.Equal("ok", ended.GetProperty("status").GetString());
        Assert.Equal("slow", ended.GetProperty("value").GetProperty("body").GetString());
        Assert.Equal(2, Web.Requests);
    }

    [Fact]
    public async Task Cancelling_a_kept_call_abandons_its_request_in_flight()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/databases/outbound/call/get")
        {
            Content = new StringContent(JsonSerializer.Serialize(new[] { $"{Web.Url}/slow?ms=60000" })),
        };
        request.Headers.Add("Prefer", "respond-async, wait=0");
        using var accepted = await Server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Accepted, accepted.StatusCode);
        await ScheduledTablesTests.EventuallyAsync(() => Task.FromResult(Web.Requests == 1));
        var stopwatch = Stopwatch.StartNew();

        using var cancelled = await Server.Http.DeleteAsync(accepted.Headers.Location);
        await ScheduledTablesTests.EventuallyAsync(() => Task.FromResult(Web.Abandoned == 1));

        Assert.True(cancelled.IsSuccessStatusCode, $"DELETE answered {(int)cancelled.StatusCode}");
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(5), $"the request went on for {stopwatch.Elapsed}");
        var ended = await DurableCallTests.EndedAsync(Server, accepted.Headers.Location!.ToString().Split('/')[^1]);
        Assert.Equal("cancelled", ended.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Procedures_waiting_on_a_slow_server_hold_no_thread()
    {
        const int Waiting = 40;
        var stopwatch = Stopwatch.StartNew();
        var slow = Enumerable.Range(0, Waiting).Select(_ => GetAsync($"{Web.Url}/slow?ms=3000")).ToList();
        await ScheduledTablesTests.EventuallyAsync(() => Task.FromResult(Web.MostInFlight == Waiting));

        var add = Stopwatch.StartNew();
        var sum = await (await Server.CallAsync("outbound", "add", "[1,2]")).Content.ReadAsStringAsync();
        var addTook = add.Elapsed;
        var answers = await Task.WhenAll(slow);

        Assert.Equal("3", sum);
        Assert.True(addTook < TimeSpan.FromSeconds(1), $"add took {addTook} while {Waiting} requests waited");
        Assert.All(answers, answer => Assert.Equal("slow", answer.GetProperty("body").GetString()));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(10), $"{Waiting} requests of 3 s took {stopwatch.Elapsed}");
    }

    [Fact]
    public async Task A_database_has_at_most_its_share_of_requests_in_flight()
    {
        await using var narrow = await TestServer.StartAsync(Database, "--Procyon:Http:AllowedHosts:0=127.0.0.1", "--Procyon:Http:MaxConcurrentPerDatabase=2");

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ =>
            narrow.CallAsync("outbound", "get", JsonSerializer.Serialize(new[] { $"{Web.Url}/slow?ms=300" }))));

        Assert.All(answers, answer => Assert.Equal(HttpStatusCode.OK, answer.StatusCode));
        Assert.Equal(2, Web.MostInFlight);
        Assert.Equal(6, Web.Requests);
    }

    private async Task<JsonElement> GetAsync(string url) => await CallAsync("get", [url]);

    private async Task<JsonElement> SendAsync(string method, string url, string[] headers, byte[] body, ulong timeoutMs = 0) =>
        await CallAsync("send", [method, url, headers, Convert.ToHexStringLower(body), timeoutMs]);

    private async Task<JsonElement> CallAsync(string function, object[] arguments)
    {
        var response = await Server.CallAsync("outbound", function, JsonSerializer.Serialize(arguments));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{function}: {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private async Task<string> ExampleFetchAsync(string url)
    {
        var response = await Server.CallAsync("example", "fetch", JsonSerializer.Serialize(new[] { url }));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonSerializer.Deserialize<string>(await response.Content.ReadAsStringAsync())!;
    }

    private static string[] Headers(JsonElement fetched) => [.. fetched.GetProperty("headers").EnumerateArray().Select(h => h.GetString()!)];

    private static void AssertFailed(JsonElement fetched, string kind, string message)
    {
        Assert.Equal(kind, fetched.GetProperty("error_kind").GetString());
        Assert.Contains(message, fetched.GetProperty("error").GetString());
        Assert.Equal(0, fetched.GetProperty("status").GetInt32());
    }
}

/// <summary>Which addresses count as public, whatever form carries them.</summary>
public sealed class AddressPolicyTests
{
    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.255.0.9")]
    [InlineData("10.0.0.1")]
    [InlineData("172.16.5.4")]
    [InlineData("172.31.255.255")]
    [InlineData("192.168.1.1")]
    [InlineData("169.254.169.254")]
    [InlineData("100.64.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("224.0.0.1")]
    [InlineData("255.255.255.255")]
    [InlineData("::")]
    [InlineData("::1")]
    [InlineData("fe80::1")]
    [InlineData("fd00::1")]
    [InlineData("fc00::1")]
    [InlineData("ff02::1")]
    [InlineData("::ffff:127.0.0.1")]
    [InlineData("::ffff:169.254.169.254")]
    [InlineData("::ffff:10.0.0.1")]
    [InlineData("::127.0.0.1")]
    [InlineData("64:ff9b::a9fe:a9fe")]
    [InlineData("2002:a9fe:a9fe::1")]
    [InlineData("2001:0:4136:e378:8000:63bf:3fff:fdd2")]
    public void Not_public(string address) => Assert.False(AddressPolicy.IsPublic(IPAddress.Parse(address)));

    [Theory]
    [InlineData("8.8.8.8")]
    [InlineData("1.1.1.1")]
    [InlineData("172.32.0.1")]
    [InlineData("100.128.0.1")]
    [InlineData("2606:4700:4700::1111")]
    [InlineData("::ffff:8.8.8.8")]
    [InlineData("64:ff9b::808:808")]
    [InlineData("2002:808:808::1")]
    public void Public(string address) => Assert.True(AddressPolicy.IsPublic(IPAddress.Parse(address)));
}
