using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>The four steps of the README's walk-through, against the example module.</summary>
[Collection(TimingCollection.Name)]
public sealed partial class WalkingSkeletonTests(ServerFixture fixture) : ServerTest(fixture)
{
    /// <summary>
    /// Never early, and one sleep, not two: how late a wake-up is belongs to the sleepers benchmark
    /// (a shared CI machine once woke this one 248 ms late).
    /// </summary>
    [Fact]
    public async Task Sleep_one_second_answers_after_a_second_and_logs_a_delta_of_at_least_1_s()
    {
        var response = await Server.CallAsync("example", "sleep_one_second", "[]");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("null", await response.Content.ReadAsStringAsync());
        var logs = JsonDocument.Parse(await Server.LogsAsync("example")).RootElement;
        var line = logs.EnumerateArray().Select(l => l.GetProperty("message").GetString()!).Last(m => m.StartsWith("Slept from", StringComparison.Ordinal));
        var match = SleptPattern().Match(line);
        Assert.True(match.Success, line);
        var delta = double.Parse(match.Groups["seconds"].Value, CultureInfo.InvariantCulture);
        Assert.InRange(delta, 1.0, 1.9);
        var from = DateTimeOffset.Parse(match.Groups["from"].Value, CultureInfo.InvariantCulture);
        var to = DateTimeOffset.Parse(match.Groups["to"].Value, CultureInfo.InvariantCulture);
        Assert.InRange((to - from).TotalSeconds, 1.0, 1.9);
    }

    [Fact]
    public async Task Add_returns_the_sum()
    {
        var response = await Server.CallAsync("example", "add", "[2,3]");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("5", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Add_accepts_named_arguments()
    {
        var response = await Server.CallAsync("example", "add", """{"b": 40, "a": 2}""");

        Assert.Equal("42", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Greet_returns_a_string()
    {
        var response = await Server.CallAsync("example", "greet", """["Ada", 2]""");

        Assert.Equal("\"Hello, Ada! Hello, Ada!\"", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Subscriber_receives_a_Result_for_each_call()
    {
        await using var results = await ResultSubscription.StartAsync(Server, "example", null);

        await Server.CallAsync("example", "add", "[2,3]");
        await Server.CallAsync("example", "sleep_one_second", "[]");

        var add = await results.NextAsync("add");
        Assert.Equal("example", add.GetProperty("db").GetString());
        Assert.Equal("http", add.GetProperty("origin").GetString());
        Assert.Equal("ok", add.GetProperty("status").GetString());
        Assert.Equal(5, add.GetProperty("value").GetInt32());
        Assert.Equal(new string('0', 64), add.GetProperty("caller").GetString());
        Assert.True(add.GetProperty("durationMicros").GetInt64() >= 0);
        Assert.InRange(add.GetProperty("startedAt").GetDateTimeOffset(), DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow);
        var sleep = await results.NextAsync("sleep_one_second");
        Assert.Equal("ok", sleep.GetProperty("status").GetString());
        Assert.Equal(JsonValueKind.Null, sleep.GetProperty("value").ValueKind);
        // Never early; the upper bound only catches a sleep counted twice or lost (a loaded CI
        // machine has woken it 0.4 s late), not the machine's speed.
        Assert.InRange(sleep.GetProperty("durationMicros").GetInt64(), 1_000_000, 10_000_000);
    }

    [Fact]
    public async Task Schema_lists_functions_with_parameter_names_and_types()
    {
        var schema = await Server.Http.GetFromJsonAsync<JsonElement>("/v1/databases/example/schema");

        var add = schema.GetProperty("functions").EnumerateArray().Single(f => f.GetProperty("name").GetString() == "add");
        Assert.Equal("procedure", add.GetProperty("kind").GetString());
        Assert.Equal("""[{"name":"a","type":"i32"},{"name":"b","type":"i32"}]""", add.GetProperty("params").GetRawText());
        Assert.Equal("i32", add.GetProperty("returns").GetString());
    }

    [Fact]
    public async Task Swagger_UI_and_health_are_served()
    {
        Assert.Equal(HttpStatusCode.OK, (await Server.Http.GetAsync("/swagger/index.html")).StatusCode);
        Assert.Contains("/v1/databases/{db}/call/{fn}", await Server.Http.GetStringAsync("/swagger/v1/swagger.json"));
        Assert.Equal("Healthy", await Server.Http.GetStringAsync("/healthz"));
    }

    [GeneratedRegex(@"^Slept from (?<from>\S+) to (?<to>\S+), a total of (?<seconds>[0-9.]+)s$")]
    private static partial Regex SleptPattern();
}
