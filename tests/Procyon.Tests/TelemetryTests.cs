using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>
/// /metrics in Prometheus's text format after known calls, and a call's span (and its log lines)
/// under the caller's trace. The instruments are the process's, shared by every server in it: the
/// tests use database names no other test uses, and run alone (after the parallel tests), so that
/// what no database labels (instances, connections, queues, compiles) changes only by what they do.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed partial class TelemetryTests() : OwnServerTest("--Procyon:Api:SqlTimeout=00:00:01")
{
    protected override IEnumerable<(string Database, string Module)> Published =>
        [("metered", "faulty"), ("metered-example", "example"), ("metered-ledger", "ledger")];

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

        // A reducer's table call and its commit are spans of their own under the call's.
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("metered-example", "add_person", """["Grace", 45]""")).StatusCode);
        Activity reducer, insert, commit;
        lock (spans)
        {
            reducer = Assert.Single(spans, s => s.DisplayName == "call metered-example.add_person");
            insert = Assert.Single(spans, s => s.DisplayName == "table_insert" && (string?)s.GetTagItem("procyon.db") == "metered-example");
            commit = Assert.Single(spans, s => s.DisplayName == "commit" && (string?)s.GetTagItem("procyon.db") == "metered-example");
        }
        Assert.Equal(reducer.SpanId, insert.ParentSpanId);
        Assert.Equal("person", insert.GetTagItem("procyon.table"));
        Assert.Equal(reducer.SpanId, commit.ParentSpanId);
        Assert.Equal(reducer.TraceId, commit.TraceId);

        // A line the module logs during a traced call carries the trace's id.
        using var shout = new HttpRequestMessage(HttpMethod.Post, "/v1/databases/metered/call/shouts") { Content = new StringContent("[1, 3]") };
        shout.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
        Assert.Equal(HttpStatusCode.OK, (await Server.Http.SendAsync(shout)).StatusCode);
        Assert.Contains($"\"traceId\":\"{traceId}\"", await Server.LogsAsync("metered"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Instances_their_memory_compiles_and_publishes_are_measured()
    {
        var before = await ScrapeAsync();

        (await Server.PublishAsync("metered-again", "faulty")).EnsureSuccessStatusCode();
        Assert.Equal("3", await (await Server.CallAsync("metered-again", "add", "[1,2]")).Content.ReadAsStringAsync());

        var after = await ScrapeAsync();
        // The module's code was already loaded here (database "metered" runs the same bytes): one lookup, no compile.
        Assert.Equal(1, Delta(before, after, "procyon_compiled_cache_lookups_total", ("result", "loaded")));
        Assert.Equal(1, Delta(before, after, "procyon_compiled_cache_lookups_total"));
        Assert.Equal(1, Delta(before, after, "procyon_publish_duration_seconds_count", ("status", "ok")));
        // Its first instance (made to read its description) waits in the pool, and served the call.
        Assert.Equal(1, Delta(before, after, "procyon_instances", ("state", "idle")));
        Assert.Equal(0, Delta(before, after, "procyon_instances", ("state", "live")));
        Assert.True(Delta(before, after, "procyon_instances_memory_bytes", ("state", "idle")) >= 64 * 1024, "the idle instance's memory is counted");
        Assert.Equal(0, Delta(before, after, "procyon_instances_memory_bytes", ("state", "live")));
    }

    [Fact]
    public async Task Sleeping_queued_and_shed_calls_are_counted()
    {
        // A server of one call slot and a queue of one, on the same Postgres: a nap takes the slot.
        await using var small = await TestServer.StartAsync(Database, "--Procyon:Runtime:MaxConcurrentCalls=1", "--Procyon:Runtime:MaxQueuedCalls=1");
        var before = await ScrapeAsync();

        // Longer than Procyon:Runtime:DurableSleepAfter (1 s): it sleeps with its snapshot in Postgres.
        var napping = small.CallAsync("metered", "naps", "[1, 2500]");
        await EventuallyAsync(async () => Sum(await ScrapeAsync(), "procyon_calls_sleeping", ("db", "metered"), ("state", "durable")) == 1);
        var queued = small.CallAsync("metered", "add", "[1,2]");
        await EventuallyAsync(async () => Delta(before, await ScrapeAsync(), "procyon_calls_queued", ("queue", "slot")) == 1);
        var shed = await small.CallAsync("metered", "add", "[1,2]");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, shed.StatusCode);
        Assert.Equal(1, Delta(before, await ScrapeAsync(), "procyon_calls_shed_total", ("db", "metered"), ("reason", "queue")));
        Assert.Equal(HttpStatusCode.OK, (await napping).StatusCode);
        Assert.Equal("3", await (await queued).Content.ReadAsStringAsync());
        var after = await ScrapeAsync();
        Assert.Equal(0, Sum(after, "procyon_calls_sleeping", ("db", "metered")));
        Assert.Equal(0, Delta(before, after, "procyon_calls_queued"));
        Assert.Equal(1, Delta(before, after, "procyon_calls_shed_total"));
    }

    [Fact]
    public async Task Transactions_are_counted_while_open_and_when_Postgres_makes_them_run_again()
    {
        // Increments of one row at once: Postgres cannot serialize them all, and reducers run again.
        var responses = await Task.WhenAll(Enumerable.Range(0, 40).Select(_ => Server.CallAsync("metered-ledger", "increment", "[1]")));

        Assert.All(responses, response => Assert.Equal(HttpStatusCode.OK, response.StatusCode));
        var samples = await ScrapeAsync();
        Assert.True(Sum(samples, "procyon_transactions_retries_total", ("db", "metered-ledger")) > 0, "contended increments ran again");
        Assert.Equal(0, Sum(samples, "procyon_transactions_give_ups_total", ("db", "metered-ledger")));
        Assert.Equal(0, Value(samples, "procyon_transactions_open", ("db", "metered-ledger")));
    }

    [Fact]
    public async Task Sql_queries_are_counted_by_status_with_the_rows_and_bytes_answered()
    {
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("metered-example", "add_person", """["Ada", 36]""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("metered-example", "add_person", """["Alan", 41]""")).StatusCode);

        var answer = await Server.SqlAsync("metered-example", "SELECT name FROM person ORDER BY name");
        var rejected = await Server.SqlAsync("metered-example", "SELECT nothing FROM nowhere");
        var slow = await Server.SqlAsync("metered-example", "SELECT pg_sleep(3)");

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, rejected.StatusCode);
        Assert.False(slow.IsSuccessStatusCode);
        var samples = await ScrapeAsync();
        Assert.Equal(1, Value(samples, "procyon_sql_queries_total", ("db", "metered-example"), ("status", "ok")));
        Assert.Equal(1, Value(samples, "procyon_sql_queries_total", ("db", "metered-example"), ("status", "rejected")));
        Assert.Equal(1, Value(samples, "procyon_sql_queries_total", ("db", "metered-example"), ("status", "timeout")));
        Assert.Equal(2, Value(samples, "procyon_sql_rows_total", ("db", "metered-example")));
        Assert.Equal((await answer.Content.ReadAsByteArrayAsync()).Length, Value(samples, "procyon_sql_answers_bytes_total", ("db", "metered-example")));
    }

    [Fact]
    public async Task Scheduled_rows_are_counted_as_calls_and_as_leased_while_they_run()
    {
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("metered-example", "schedule_reminder", """["now", 0]""")).StatusCode);
        // Two procedure rows that sleep 2 s each: their rows stay leased here meanwhile.
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("metered-ledger", "schedule_naps", "[2, 2000]")).StatusCode);

        await EventuallyAsync(async () => Sum(await ScrapeAsync(), "procyon_scheduler_leased", ("db", "metered-ledger")) == 2);
        await EventuallyAsync(async () => Sum(await ScrapeAsync(), "procyon_calls_total", ("db", "metered-ledger"), ("fn", "run_nap"), ("origin", "schedule"), ("status", "ok")) == 2);
        var samples = await ScrapeAsync();
        Assert.Equal(1, Value(samples, "procyon_calls_total", ("db", "metered-example"), ("fn", "send_reminder"), ("origin", "schedule"), ("status", "ok")));
        Assert.Equal(0, Sum(samples, "procyon_scheduler_leased", ("db", "metered-ledger")));
    }

    [Fact]
    public async Task Hub_connections_subscriptions_and_results_sent_are_counted()
    {
        var before = await ScrapeAsync();
        var subscription = await ResultSubscription.StartAsync(Server, "metered-example", null);
        await using (subscription)
        {
            var subscribed = await ScrapeAsync();
            Assert.Equal(1, Delta(before, subscribed, "procyon_hub_connections"));
            Assert.Equal(1, Value(subscribed, "procyon_hub_subscriptions", ("db", "metered-example")));

            Assert.Equal("5", await (await Server.CallAsync("metered-example", "add", "[2,3]")).Content.ReadAsStringAsync());
            await subscription.NextAsync("add");

            var sent = await ScrapeAsync();
            Assert.Equal(1, Value(sent, "procyon_hub_results_sent_total", ("db", "metered-example")));
            Assert.Equal(0, Sum(sent, "procyon_hub_results_dropped_total", ("db", "metered-example")));
        }
        await EventuallyAsync(async () =>
        {
            var after = await ScrapeAsync();
            return Delta(before, after, "procyon_hub_connections") == 0 && Value(after, "procyon_hub_subscriptions", ("db", "metered-example")) == 0;
        });
    }

    /// <summary>/metrics as it is now: the exporter answers from a cache for 300 ms after each scrape, so it waits that out first.</summary>
    private async Task<List<Sample>> ScrapeAsync()
    {
        await Task.Delay(TimeSpan.FromMilliseconds(350));
        return Parse(await Server.Http.GetStringAsync("/metrics"));
    }

    private static Task EventuallyAsync(Func<Task<bool>> condition) => ScheduledTablesTests.EventuallyAsync(condition);

    /// <summary>The sum of the series of <paramref name="name"/> with <paramref name="labels"/> (0 when there are none).</summary>
    private static double Sum(List<Sample> samples, string name, params (string Key, string Value)[] labels) =>
        samples.Where(s => s.Name == name && Has(s, labels)).Sum(s => s.Value);

    private static double Delta(List<Sample> before, List<Sample> after, string name, params (string Key, string Value)[] labels) =>
        Sum(after, name, labels) - Sum(before, name, labels);

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
