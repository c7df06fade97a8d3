using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>
/// What the console's dashboard reads: <c>/activity</c> (calls, durations and lateness in
/// five-second points) and <c>/scheduler</c> (pending rows, recent runs and failures), both its
/// owner's. Database names are this class's own: the activity counts every server in this process.
/// </summary>
public sealed class DashboardTests : OwnServerTest
{
    protected override IEnumerable<(string Database, string Module)> Published => [("dashboard_calls", "example"), ("dashboard_runs", "ledger")];

    [Theory]
    [InlineData("activity")]
    [InlineData("scheduler")]
    public async Task Only_the_owner_reads_them(string view)
    {
        var (_, stranger) = await Server.NewIdentityAsync();

        await Problems.AssertProblemAsync(await GetAsync($"dashboard_calls/{view}", null), HttpStatusCode.Unauthorized);
        await Problems.AssertProblemAsync(await GetAsync($"dashboard_calls/{view}", stranger), HttpStatusCode.Forbidden);
        await Problems.AssertProblemAsync(await GetAsync($"no_such_db/{view}", await Server.OwnerTokenAsync()), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Activity_counts_the_calls_and_failures_that_ended()
    {
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("dashboard_calls", "add", "[1, 2]")).StatusCode);
        }
        Assert.Equal(HttpStatusCode.NotFound, (await Server.CallAsync("dashboard_calls", "no_such_function", "[]")).StatusCode);

        var activity = await ReadAsync("dashboard_calls/activity");
        var points = activity.GetProperty("points").EnumerateArray().ToList();

        Assert.Equal(5, activity.GetProperty("bucketSeconds").GetInt32());
        Assert.Equal(60, points.Count);
        Assert.Equal(4, points.Sum(p => p.GetProperty("calls").GetInt64()));
        Assert.Equal(1, points.Sum(p => p.GetProperty("errors").GetInt64()));
        var busy = points.Where(p => p.GetProperty("calls").GetInt64() > 0).ToList();
        Assert.All(busy, p => Assert.True(p.GetProperty("p99Ms").GetDouble() >= p.GetProperty("p50Ms").GetDouble()));
        Assert.All(points.Except(busy), p => Assert.Equal(JsonValueKind.Null, p.GetProperty("p50Ms").ValueKind));
        var times = points.Select(p => p.GetProperty("at").GetDateTimeOffset()).ToList();
        Assert.All(times.Zip(times.Skip(1)), pair => Assert.Equal(TimeSpan.FromSeconds(5), pair.Second - pair.First));
    }

    [Fact]
    public async Task The_scheduler_view_shows_pending_rows_then_their_runs_and_failures()
    {
        var delay = (long)TimeSpan.FromMinutes(10).TotalMilliseconds;
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("dashboard_calls", "schedule_reminder", $"""["later", {delay}]""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("dashboard_calls", "schedule_reminder", """["now", 0]""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("dashboard_runs", "schedule_doomed", "")).StatusCode);

        var reminder = await WaitForAsync("dashboard_calls", "reminder", t => t.GetProperty("recent").GetArrayLength() == 1);
        Assert.Equal("send_reminder", reminder.GetProperty("function").GetString());
        Assert.Equal("reducer", reminder.GetProperty("kind").GetString());
        Assert.Equal(1, reminder.GetProperty("pending").GetInt64());
        Assert.False(reminder.GetProperty("more").GetBoolean());
        var nextDue = reminder.GetProperty("nextDue").GetDateTimeOffset();
        Assert.InRange(nextDue, DateTimeOffset.UtcNow.AddMinutes(9), DateTimeOffset.UtcNow.AddMinutes(10));
        var run = reminder.GetProperty("recent")[0];
        Assert.Equal("ok", run.GetProperty("status").GetString());
        Assert.True(run.GetProperty("latenessMs").GetDouble() >= 0);
        Assert.True(run.GetProperty("startedAt").GetDateTimeOffset() >= run.GetProperty("due").GetDateTimeOffset());
        Assert.Equal(0, reminder.GetProperty("failures").GetArrayLength());

        var doomed = await WaitForAsync("dashboard_runs", "doomed", t => t.GetProperty("failures").GetArrayLength() == 1);
        var failure = doomed.GetProperty("failures")[0];
        Assert.Equal("error", failure.GetProperty("status").GetString());
        Assert.Equal("doomed to fail", failure.GetProperty("error").GetString());
        Assert.Equal(failure.GetProperty("scheduledId").GetInt64(), doomed.GetProperty("recent")[0].GetProperty("scheduledId").GetInt64());
        Assert.Equal(0, doomed.GetProperty("pending").GetInt64());
        Assert.Equal(JsonValueKind.Null, doomed.GetProperty("nextDue").ValueKind);
    }

    /// <summary>Polls the scheduler view until <paramref name="table"/> satisfies <paramref name="done"/>.</summary>
    private async Task<JsonElement> WaitForAsync(string database, string table, Func<JsonElement, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var view = (await ReadAsync($"{database}/scheduler")).EnumerateArray().Single(t => t.GetProperty("table").GetString() == table);
            if (done(view))
            {
                return view;
            }
            Assert.True(DateTime.UtcNow < deadline, $"the scheduler view of {database}.{table} stayed {view}");
            await Task.Delay(100);
        }
    }

    private async Task<JsonElement> ReadAsync(string path)
    {
        var response = await GetAsync(path, await Server.OwnerTokenAsync());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
    }

    private async Task<HttpResponseMessage> GetAsync(string path, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/databases/{path}");
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return await Server.Http.SendAsync(request);
    }
}
