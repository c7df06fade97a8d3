using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// <c>ctx.new_uuid_v4()</c>, <c>ctx.new_uuid_v7()</c> and <c>Uuid</c> values over HTTP, in a Postgres
/// <c>uuid</c> column and in SQL, with tests/modules/ported (each test publishes it as a database of its own).
/// </summary>
public sealed class UuidTests(ServerFixture fixture) : ServerTest(fixture)
{
    private readonly ServerFixture _fixture = fixture;

    [Fact]
    public async Task V4_ids_carry_version_4_and_the_RFC_variant_and_every_other_bit_is_random()
    {
        var db = await PublishAsync("uuid_v4");

        var ids = (await CallAsync<string[]>(db, "uuids_v4", "[1000]")).Concat(await CallAsync<string[]>(db, "uuids_v4", "[1000]")).ToList();

        Assert.Equal(2000, ids.Distinct().Count());
        Assert.All(ids, id => Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", id));
        // Each of the 122 random bits is set in about half of the ids (6 standard deviations either way).
        var values = ids.Select(Value).ToList();
        for (var bit = 0; bit < 128; bit++)
        {
            if (bit is >= 76 and < 80 or 62 or 63)
            {
                continue;
            }
            var set = values.Count(v => ((v >> bit) & UInt128.One) == UInt128.One);
            Assert.InRange(set, 1000 - 135, 1000 + 135);
        }
    }

    [Fact]
    public async Task V7_ids_sort_in_the_order_they_were_made_in_a_loop_across_calls_and_across_instances()
    {
        var db = await PublishAsync("uuid_v7");
        var started = DateTimeOffset.UtcNow;

        // Eight callers at once, each making ten calls one after the other: a caller's calls run on
        // whichever pooled instances are free, so its ids come from several instances in turn.
        var callers = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            var minted = new List<(string Instance, string[] Ids)>();
            for (var call = 0; call < 10; call++)
            {
                var result = await CallAsync<JsonElement>(db, "uuids_v7", "[200]");
                minted.Add((result.GetProperty("instance").GetString()!, result.GetProperty("ids").Deserialize<string[]>()!));
            }
            return minted;
        }));
        var after = (await CallAsync<JsonElement>(db, "uuids_v7", "[2]")).GetProperty("ids").Deserialize<string[]>()!;

        foreach (var minted in callers)
        {
            var ids = minted.SelectMany(m => m.Ids).ToList();
            Assert.Equal(2000, ids.Count);
            for (var i = 1; i < ids.Count; i++)
            {
                Assert.True(string.CompareOrdinal(ids[i - 1], ids[i]) < 0, $"{ids[i - 1]} was made before {ids[i]} but does not sort before it");
            }
        }
        Assert.True(callers.Any(minted => minted.Select(m => m.Instance).Distinct().Count() > 1), "no caller's calls ran on more than one instance");
        var all = callers.SelectMany(minted => minted.SelectMany(m => m.Ids)).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
        // Not only the random bits tell them apart: no two share milliseconds and counter, which
        // is what makes ids of concurrent calls on different instances sort as they were made.
        Assert.Equal(all.Count, all.Select(Clock).Distinct().Count());
        Assert.True(string.CompareOrdinal(all.Max(StringComparer.Ordinal), after[0]) < 0, "an id made after all others does not sort after them");
        Assert.All(all.Concat(after), id => Assert.Matches("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", id));
        // The first 48 bits are the milliseconds the id was made at.
        var made = DateTimeOffset.FromUnixTimeMilliseconds((long)(Value(all[0]) >> 80));
        Assert.InRange(made, started.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
    }

    [Fact]
    public async Task A_table_keyed_by_uuid_keeps_them_in_uuid_columns_in_the_order_they_were_made()
    {
        var db = await PublishAsync("uuid_table");

        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync(db, "issue_tickets", """["ada", 50]""")).StatusCode);

        var schema = "db_" + db;
        Assert.Equal(
            ["id:uuid", "token:uuid", "batch:uuid", "holder:text"],
            await QueryAsync($"SELECT column_name || ':' || data_type FROM information_schema.columns WHERE table_schema = '{schema}' AND table_name = 'ticket' ORDER BY ordinal_position"));
        Assert.Contains(await QueryAsync($"SELECT indexdef FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'ticket'"), d => d.EndsWith("(batch)", StringComparison.Ordinal));
        // One reducer inserted them in the order it made them: that is also Postgres's uuid order.
        var inserted = await QueryAsync($"SELECT id::text FROM {schema}.ticket ORDER BY ctid");
        Assert.Equal(50, inserted.Count);
        Assert.Equal(inserted, await QueryAsync($"SELECT id::text FROM {schema}.ticket ORDER BY id"));
        Assert.Equal(inserted, await CallAsync<string[]>(db, "ticket_ids", "[]"));

        // Keys read back through the module, by primary key (in upper case too) and by a unique column.
        Assert.Equal("\"ada\"", await BodyAsync(db, "ticket", $"""["{inserted[7]}"]"""));
        Assert.Equal("\"ada\"", await BodyAsync(db, "ticket", $$"""{"id": "{{inserted[7].ToUpperInvariant()}}"}"""));
        Assert.Equal("null", await BodyAsync(db, "ticket", """["00000000-0000-0000-0000-000000000000"]"""));
        var token = (await QueryAsync($"SELECT token::text FROM {schema}.ticket WHERE id = '{inserted[7]}'")).Single();
        Assert.Equal($"\"{inserted[7]}\"", await BodyAsync(db, "ticket_by_token", $"[\"{token}\"]"));
        Assert.Single(await QueryAsync($"SELECT DISTINCT batch FROM {schema}.ticket"));

        // The SQL endpoint writes them as JSON writes them.
        var sql = await Server.SqlAsync(db, "SELECT id FROM ticket ORDER BY id LIMIT 1", await Server.OwnerTokenAsync());
        Assert.Contains($"[\"{inserted[0]}\"]", await sql.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_uuid_argument_round_trips_as_lowercase_text_and_anything_else_is_a_400_naming_the_parameter()
    {
        var db = await PublishAsync("uuid_json");

        Assert.Equal("\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\"", await BodyAsync(db, "echo_uuid", """["0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B"]"""));
        Assert.Equal("\"ffffffff-ffff-ffff-ffff-ffffffffffff\"", await BodyAsync(db, "echo_uuid", """{"id": "ffffffff-ffff-ffff-ffff-ffffffffffff"}"""));

        foreach (var bad in (string[])["\"not-a-uuid\"", "\"0190a1b2c3d47e5f8a9b0c1d2e3f4a5b\"", "\"{0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}\"", "\" 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\"", "\"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g\"", "42", "null"])
        {
            var problem = await AssertProblemAsync(await Server.CallAsync(db, "echo_uuid", $"{{\"id\": {bad}}}"), HttpStatusCode.BadRequest);
            Assert.StartsWith("id: expected a UUID (8-4-4-4-12 hex digits", problem.Detail(), StringComparison.Ordinal);
        }
        var notAUuid = await AssertProblemAsync(await Server.CallAsync(db, "echo_uuid", """["not-a-uuid"]"""), HttpStatusCode.BadRequest);
        Assert.EndsWith("got \"not-a-uuid\"", notAUuid.Detail(), StringComparison.Ordinal);
    }

    private async Task<string> PublishAsync(string db)
    {
        (await Server.PublishAsync(db, "ported")).EnsureSuccessStatusCode();
        return db;
    }

    private async Task<T> CallAsync<T>(string db, string function, string body)
    {
        var response = await Server.CallAsync(db, function, body);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{function}({body}) → {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<T>())!;
    }

    private async Task<string> BodyAsync(string db, string function, string body)
    {
        var response = await Server.CallAsync(db, function, body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{function}({body}) → {(int)response.StatusCode} {text}");
        return text;
    }

    private Task<List<string>> QueryAsync(string sql) => _fixture.Database.QueryAsync(sql);

    /// <summary>A v7 id's milliseconds and 16-bit counter (its high 12 bits before the variant, its low 4 after).</summary>
    private static ulong Clock(string uuid)
    {
        var value = Value(uuid);
        return (ulong)(value >> 80) << 16 | (ulong)((value >> 64) & 0xFFF) << 4 | (ulong)((value >> 58) & 0xF);
    }

    private static UInt128 Value(string uuid) => UInt128.Parse(uuid.Replace("-", "", StringComparison.Ordinal), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
