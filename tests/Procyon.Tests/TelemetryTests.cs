using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>/metrics in Prometheus's text format after known calls, and a call's span (and its log lines) under the caller's trace.</summary>
public sealed partial class TelemetryTests : OwnServerTest
{
    // A database name no other test uses: the instruments are the process's, shared by every server in it.
    protected override IEnumerable<(string Database, string Module)> Published => [("metered", "faulty")];

    [Fact]
    public async Task Metrics_count_calls_by_status_and_histogram_their_durations()
    {
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("3", await (await Server.CallAsync("metered", "add", "[1,2]")).Content.ReadAsStringAsync());
        }
        await Server.CallAsync("metered", "add", """[1,"two"]""");
        // A retry of CallOnce with the same key (over HTTP: Idempotency-Key) gets the kept result: one call, counted once.
        await using (var hub = await Server.ConnectHubAsync())
        {
            for (var attempt = 0; attempt < 2; attempt++)
            {
                var once = await hub.InvokeAsync<JsonElement>("CallOnce", "metered", "add", JsonDocument.Parse("[4,4]").RootElement, "metered-once", null);
                Assert.Equal(8, once.GetProperty("value").GetInt32());
            }
        }

        var samples = Parse(await Server.Http.GetStringAsync("/metrics"));

        Assert.Equal(3, Value(samples, "procyon_calls_total", ("db", "metered"), ("fn", "add"), ("origin", "http"), ("status", "ok")));
        Assert.Equal(1, Value(samples, "procyon_calls_total", ("db", "metered"), ("fn", "add"), ("origin", "hub"), ("status", "ok")));
        Assert.Equal(1, Value(samples, "procyon_calls_total", ("db", "metered"), ("fn", "add"), ("origin", "http"), ("status", "error")));
        Assert.Equal(3, Value(samples, "procyon_call_duration_seconds_count", ("db", "metered"), ("origin", "http"), ("status", "ok")));
        var buckets = samples
            .Where(s => s.Name == "procyon_call_duration_seconds_bucket" && Has(s, ("db", "metered"), ("origin", "http"), ("status", "ok")))
            .Select(s => (Le: s.Labels["le"] == "+Inf" ? double.PositiveInfinity : double.Parse(s.Labels["le"], CultureInfo.InvariantCulture), s.Value))
            .OrderBy(b => b.Le)
            .ToList();
        Assert.True(buckets.Count > 10, "the duration histogram has its buckets");
        Assert.Equal(3, buckets[^1].Value);
        Assert.True(buckets.Zip(buckets.Skip(1)).All(pair => pair.First.Value <= pair.Second.Value), "buckets are cumulative");
        Assert.Contains(samples, s => s.Name == "procyon_calls_in_flight" && Has(s, ("origin", "http")));
        Assert.Contains(samples, s => s.Name == "http_server_request_duration_seconds_count");
    }

    [Fact]
    public async Task A_calls_span_carries_its_database_function_and_the_callers_trace()
    {
        var spans = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "Procyon" or "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = activity =>
            {
                lock (spans)
                {
                    spans.Add(activity);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        var traceId = ActivityTraceId.CreateRandom();

        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/databases/metered/call/add") { Content = new StringContent("[2,2]") };
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
        Assert.Equal("4", await (await Server.Http.SendAsync(request)).Content.ReadAsStringAsync());

        Activity call;
        lock (spans)
        {
            call = Assert.Single(spans, s => s.Source.Name == "Procyon" && (string?)s.GetTagItem("procyon.db") == "metered");
        }
        Assert.Equal("call metered.add", call.DisplayName);
        Assert.Equal(traceId, call.TraceId);
        Assert.Equal("add", call.GetTagItem("procyon.fn"));
        Assert.Equal("http", call.GetTagItem("procyon.origin"));
        Assert.Equal("ok", call.GetTagItem("procyon.status"));
        Assert.Equal(ActivityStatusCode.Ok, call.Status);

        // A line the module logs during a traced call carries the trace's id.
        using var shout = new HttpRequestMessage(HttpMethod.Post, "/v1/databases/metered/call/shouts") { Content = new StringContent("[1, 3]") };
        shout.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
        Assert.Equal(HttpStatusCode.OK, (await Server.Http.SendAsync(shout)).StatusCode);
        Assert.Contains($"\"traceId\":\"{traceId}\"", await Server.LogsAsync("metered"), StringComparison.Ordinal);
    }

    private sealed record Sample(string Name, Dictionary<string, string> Labels, double Value);

    private static bool Has(Sample sample, params (string Key, string Value)[] labels) =>
        labels.All(l => sample.Labels.TryGetValue(l.Key, out var value) && value == l.Value);

    private static double Value(List<Sample> samples, string name, params (string Key, string Value)[] labels) =>
        Assert.Single(samples, s => s.Name == name && Has(s, labels)).Value;

    /// <summary>
    /// The Prometheus text exposition format: <c>name{label="value",…} value [timestamp]</c> per
    /// line, <c>#</c> lines are help and types. (No maintained parser package is served here.)
    /// </summary>
    private static List<Sample> Parse(string text) =>
        text.Split('\n')
            .Where(line => line.Length > 0 && line[0] != '#')
            .Select(line => SampleLine().Match(line))
            .Select(match =>
            {
                Assert.True(match.Success, "a sample line");
                var labels = LabelPair().Matches(match.Groups["labels"].Value)
                    .ToDictionary(m => m.Groups["key"].Value, m => Regex.Unescape(m.Groups["value"].Value));
                return new Sample(match.Groups["name"].Value, labels, double.Parse(match.Groups["value"].Value, CultureInfo.InvariantCulture));
            })
            .ToList();

    [GeneratedRegex("""^(?<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?<labels>.*)\})? (?<value>\S+)( \d+)?$""")]
    private static partial Regex SampleLine();

    [GeneratedRegex(@"(?<key>[a-zA-Z_][a-zA-Z0-9_]*)=""(?<value>(\\.|[^""\\])*)""")]
    private static partial Regex LabelPair();
}
