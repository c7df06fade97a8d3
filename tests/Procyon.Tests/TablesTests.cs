using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;
using Npgsql;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>Tables, reducers and transactions on Postgres, with the example and ledger modules.</summary>
public sealed class TablesTests(ServerFixture fixture) : ServerTest(fixture)
{
    private readonly ServerFixture _fixture = fixture;

    [Fact]
    public async Task The_design_module_stores_people_in_a_typed_Postgres_table()
    {
        // A database of its own: other tests add people to `example` in any order.
        (await Server.PublishAsync("people", "example")).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("people", "add_person", """["Ada", 36]""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("people", "add_person", """{"name": "Brian", "age": 41}""")).StatusCode);

        Assert.Equal("2", await (await Server.CallAsync("people", "count_people", "")).Content.ReadAsStringAsync());
        var rows = await QueryAsync("SELECT id, name, age FROM db_people.person ORDER BY id");
        Assert.Equal(["1|Ada|36", "2|Brian|41"], rows);
        var types = await QueryAsync("SELECT column_name || ':' || data_type FROM information_schema.columns WHERE table_schema = 'db_people' AND table_name = 'person' ORDER BY ordinal_position");
        Assert.Equal(["id:bigint", "name:text", "age:smallint"], types);
    }

    [Fact]
    public async Task A_reducer_Err_returns_422_with_its_message_and_writes_nothing()
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("example", "add_person", """["", 3]"""), HttpStatusCode.UnprocessableEntity);

        Assert.Equal("name must not be empty", problem.Detail());
        Assert.Empty(await QueryAsync("SELECT name FROM db_example.person WHERE name = ''"));
    }

    [Fact]
    public async Task Concurrent_read_modify_write_increments_of_one_row_end_exactly_right()
    {
        var before = await CounterAsync();

        var responses = await Task.WhenAll(Enumerable.Range(0, 200).Select(_ => Server.CallAsync("ledger", "increment", "[1]")));

        foreach (var response in responses)
        {
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        }
        Assert.Equal(before + 200, await CounterAsync());
    }

    [Fact]
    public async Task A_procedure_transaction_that_conflicts_mid_closure_fails_with_503_and_never_sees_made_up_rows()
    {
        await OpenAsync("bump@x", 0);

        var responses = (await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            var mine = new List<HttpResponseMessage>();
            for (var i = 0; i < 25; i++)
            {
                mine.Add(await Server.CallAsync("ledger", "bump", """["bump@x"]"""));
            }
            return mine;
        }))).SelectMany(r => r).ToList();

        foreach (var response in responses)
        {
            Assert.True(response.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, await response.Content.ReadAsStringAsync());
        }
        var abandoned = responses.Where(r => r.StatusCode == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.NotEmpty(abandoned);
        Assert.All(abandoned, r => Assert.Equal("1", r.Headers.RetryAfter?.ToString()));
        Assert.Contains("rolled back", (await AssertProblemAsync(abandoned[0], HttpStatusCode.ServiceUnavailable)).Detail());
        var committed = responses.Count(r => r.StatusCode == HttpStatusCode.OK);
        Assert.Equal([committed.ToString(System.Globalization.CultureInfo.InvariantCulture)], await QueryAsync("SELECT balance FROM db_ledger.account WHERE email = 'bump@x'"));
    }

    [Fact]
    public async Task Err_after_writes_rolls_everything_back()
    {
        await OpenAsync("err-a@x", 10);
        await OpenAsync("err-b@x", 10);

        var problem = await AssertProblemAsync(await Server.CallAsync("ledger", "transfer", """["err-a@x", "err-b@x", 50]"""), HttpStatusCode.UnprocessableEntity);

        Assert.Equal("insufficient funds", problem.Detail());
        Assert.Equal(["err-a@x|10", "err-b@x|10"], await QueryAsync("SELECT email, balance FROM db_ledger.account WHERE email LIKE 'err-%' ORDER BY email"));
    }

    [Fact]
    public async Task A_panic_after_writes_rolls_everything_back()
    {
        await OpenAsync("panic@x", 10);

        var problem = await AssertProblemAsync(await Server.CallAsync("ledger", "transfer_then_panic", """["panic@x", 7]"""), HttpStatusCode.InternalServerError);

        Assert.Contains("the ledger caught fire", problem.Detail());
        Assert.Equal(["10"], await QueryAsync("SELECT balance FROM db_ledger.account WHERE email = 'panic@x'"));
    }

    [Fact]
    public async Task A_unique_violation_is_an_error_the_module_handles()
    {
        await OpenAsync("twice@x", 1);

        var problem = await AssertProblemAsync(await Server.CallAsync("ledger", "open_account", """["twice@x", 2, null]"""), HttpStatusCode.UnprocessableEntity);

        Assert.StartsWith("taken: duplicate key value violates unique constraint", problem.Detail(), StringComparison.Ordinal);
        Assert.Contains("(email)=(twice@x) already exists", problem.Detail());
        Assert.Equal(["1"], await QueryAsync("SELECT balance FROM db_ledger.account WHERE email = 'twice@x'"));
    }

    [Fact]
    public async Task A_reducer_that_handles_a_unique_violation_goes_on_writing()
    {
        await OpenAsync("noted@x", 1);

        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("ledger", "open_or_note", """["noted@x"]""")).StatusCode);

        Assert.Contains(await QueryAsync("SELECT reason FROM db_ledger.refusal"), reason => reason.Contains("(email)=(noted@x) already exists", StringComparison.Ordinal));
        Assert.Equal(["1"], await QueryAsync("SELECT balance FROM db_ledger.account WHERE email = 'noted@x'"));
    }

    [Fact]
    public async Task Auto_increment_assigns_ids_and_types_survive_the_round_trip()
    {
        await OpenAsync("auto1@x", 5);
        await OpenAsync("auto2@x", 6);

        var ids = await QueryAsync("SELECT id FROM db_ledger.account WHERE email LIKE 'auto%' ORDER BY id");
        Assert.Equal(2, ids.Distinct().Count());
        Assert.All(ids, id => Assert.True(long.Parse(id, System.Globalization.CultureInfo.InvariantCulture) > 0));
        var row = await QueryAsync("SELECT nickname IS NULL, tags::text, big::text FROM db_ledger.account WHERE email = 'auto1@x'");
        Assert.Equal(["True|[\"new\"]|340282366920938463463374607431768211455"], row);
    }

    [Fact]
    public async Task A_procedure_try_with_tx_Err_rolls_back_and_Ok_commits()
    {
        await OpenAsync("deposit@x", 100);

        Assert.Equal("\"refused\"", await (await Server.CallAsync("ledger", "deposit_unless", """["deposit@x", 5, true]""")).Content.ReadAsStringAsync());
        Assert.Equal(["100"], await QueryAsync("SELECT balance FROM db_ledger.account WHERE email = 'deposit@x'"));
        Assert.Equal("\"deposited\"", await (await Server.CallAsync("ledger", "deposit_unless", """["deposit@x", 5, false]""")).Content.ReadAsStringAsync());
        Assert.Equal(["105"], await QueryAsync("SELECT balance FROM db_ledger.account WHERE email = 'deposit@x'"));
    }

    [Fact]
    public async Task Tables_and_columns_named_like_SQL_keywords_work()
    {
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("ledger", "add_select", """[7, "by"]""")).StatusCode);

        Assert.Equal("1", await (await Server.CallAsync("ledger", "count_selects", "")).Content.ReadAsStringAsync());
        Assert.Equal(["7|by"], await QueryAsync("SELECT \"order\", \"group\" FROM db_ledger.\"select\""));
    }

    [Fact]
    public async Task The_init_reducer_ran_once_and_cannot_be_called()
    {
        Assert.Equal(["1"], await QueryAsync("SELECT count(*) FROM db_ledger.counter"));

        var problem = await AssertProblemAsync(await Server.CallAsync("ledger", "init", ""), HttpStatusCode.BadRequest);

        Assert.Contains("init reducer", problem.Detail());
    }

    [Fact]
    public async Task Reducers_work_through_the_hub()
    {
        await using var hub = await Server.ConnectHubAsync();

        var result = await hub.InvokeAsync<JsonElement>("Call", "example", "add_person", JsonDocument.Parse("""["Hub", 9]""").RootElement, "r1");

        Assert.Equal("ok", result.GetProperty("status").GetString());
        Assert.Equal(["9"], await QueryAsync("SELECT age FROM db_example.person WHERE name = 'Hub'"));
        var refused = await hub.InvokeAsync<JsonElement>("Call", "example", "add_person", JsonDocument.Parse("""["", 9]""").RootElement, "r2");
        Assert.Equal("name must not be empty", refused.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Republishing_with_changed_tables_is_refused_with_409_unless_clear()
    {
        (await Server.PublishAsync("shapes", "ledger")).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.OK, (await Server.PublishAsync("shapes", "ledger")).StatusCode);

        var problem = await AssertProblemAsync(await Server.PublishAsync("shapes", "example"), HttpStatusCode.Conflict);

        Assert.Contains("table counter would be removed", problem.Detail());
        Assert.Contains("?clear=true", problem.Detail());
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("shapes", "increment", "[1]")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Server.PublishBytesAsync("shapes", await File.ReadAllBytesAsync(Procyon.Testing.Modules.PathOf("example")), "?clear=true")).StatusCode);
        Assert.Equal(["person", "reminder", "slow_job"], await QueryAsync("SELECT table_name FROM information_schema.tables WHERE table_schema = 'db_shapes' ORDER BY table_name"));
        await Server.DeleteAsync("shapes");
        Assert.Empty(await QueryAsync("SELECT schema_name FROM information_schema.schemata WHERE schema_name = 'db_shapes'"));
    }

    [Fact]
    public async Task The_SQL_endpoint_reads_the_database_tables_as_JSON()
    {
        await OpenAsync("sql@x", 42);

        var result = await SqlAsync("SELECT email, balance, big, tags FROM account WHERE email = 'sql@x'");

        Assert.Equal(HttpStatusCode.OK, result.StatusCode);
        var body = await result.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("""["sql@x",42,"340282366920938463463374607431768211455",["new"]]""", body.GetProperty("rows")[0].GetRawText());
        Assert.Equal("email", body.GetProperty("columns")[0].GetProperty("name").GetString());
    }

    [Theory]
    [InlineData("DELETE FROM account", HttpStatusCode.BadRequest, "read-only transaction")]
    [InlineData("UPDATE counter SET value = 0", HttpStatusCode.BadRequest, "read-only transaction")]
    [InlineData("SELECT * FROM db_example.person", HttpStatusCode.Forbidden, "permission denied")]
    [InlineData("SELECT * FROM procyon.databases", HttpStatusCode.Forbidden, "permission denied")]
    [InlineData("SELECT * FROM procyon.due", HttpStatusCode.Forbidden, "permission denied")]
    [InlineData("SELECT * FROM procyon.due FOR UPDATE", HttpStatusCode.Forbidden, "permission denied")]
    [InlineData("SELECT 1; DELETE FROM account", HttpStatusCode.BadRequest, "multiple commands")]
    [InlineData("SELECT set_config('role', 'procyon', true)", HttpStatusCode.Forbidden, "permission denied")]
    [InlineData("SELECT pg_sleep(30)", HttpStatusCode.BadRequest, "statement timeout")]
    public async Task The_SQL_endpoint_cannot_write_or_see_other_databases(string sql, HttpStatusCode status, string expected)
    {
        var problem = await AssertProblemAsync(await SqlAsync(sql), status);

        Assert.Contains(expected, problem.Detail());
    }

    [Theory]
    [InlineData("0::numeric", "0")]
    [InlineData("10000::numeric", "10000")]
    [InlineData("2.00::numeric", "2.00")]
    [InlineData("-9007199254740991::numeric", "-9007199254740991")]
    [InlineData("9007199254740992::numeric", "\"9007199254740992\"")]
    [InlineData("1.50::numeric", "\"1.50\"")]
    [InlineData("-12345.0001::numeric", "\"-12345.0001\"")]
    [InlineData("1e30::numeric", "\"1000000000000000000000000000000\"")]
    [InlineData("1e-20::numeric", "\"0.00000000000000000001\"")]
    [InlineData("1::numeric / 3", "\"0.33333333333333333333\"")]
    [InlineData("'NaN'::numeric", "\"NaN\"")]
    public async Task The_SQL_endpoint_writes_numerics_exactly(string value, string json)
    {
        var body = await (await SqlAsync($"SELECT {value}")).Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(json, body.GetProperty("rows")[0][0].GetRawText());
    }

    [Fact]
    public async Task The_SQL_endpoint_writes_long_text_and_bytes_whole()
    {
        var body = await (await SqlAsync("SELECT repeat('€é🎉\"', 20000), decode(repeat('00ff', 50000), 'hex')")).Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(string.Concat(Enumerable.Repeat("€é🎉\"", 20000)), body.GetProperty("rows")[0][0].GetString());
        Assert.Equal(string.Concat(Enumerable.Repeat("00ff", 50000)), body.GetProperty("rows")[0][1].GetString());
    }

    [Theory]
    [InlineData("SELECT 'NaN'::float8, 'Infinity'::float8, '-Infinity'::float4", """["NaN","Infinity","-Infinity"]""")]
    [InlineData("SELECT ARRAY[1, 2, 3], ARRAY['a', NULL], ARRAY[1.5]::float8[]", """[[1,2,3],["a",null],[1.5]]""")]
    public async Task The_SQL_endpoint_writes_values_JSON_has_no_literal_for(string sql, string row)
    {
        var response = await SqlAsync(sql);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(row, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("rows")[0].GetRawText());
    }

    [Fact]
    public async Task The_SQL_endpoint_refuses_COPY_with_400()
    {
        var problem = await AssertProblemAsync(await SqlAsync("COPY account TO STDOUT"), HttpStatusCode.BadRequest);

        Assert.Contains("COPY", problem.Detail());
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(HttpStatusCode.OK, (await SqlAsync("SELECT count(*) FROM account")).StatusCode);
        }
    }

    [Fact]
    public async Task The_SQL_endpoint_caps_rows()
    {
        var body = await (await SqlAsync("SELECT * FROM generate_series(1, 5000)")).Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal(1000, body.GetProperty("rows").GetArrayLength());
        Assert.True(body.GetProperty("truncated").GetBoolean());
    }

    /// <summary>SQL as the owner, whose role reads every table of the database and nothing else.</summary>
    private async Task<HttpResponseMessage> SqlAsync(string sql) => await Server.SqlAsync("ledger", sql, await Server.OwnerTokenAsync());

    private async Task OpenAsync(string email, long balance) =>
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("ledger", "open_account", $"[\"{email}\", {balance}, null]")).StatusCode);

    private async Task<long> CounterAsync() =>
        long.Parse(await (await Server.CallAsync("ledger", "counter_value", "")).Content.ReadAsStringAsync(), System.Globalization.CultureInfo.InvariantCulture);

    private Task<List<string>> QueryAsync(string sql) => _fixture.Database.QueryAsync(sql);
}
