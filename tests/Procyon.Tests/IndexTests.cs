using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Procyon.Runtime;
using Procyon.Sats;
using Procyon.Storage.Tables;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// B-tree indexes of tests/modules/indexed over HTTP: <c>filter</c> and <c>delete</c> with every
/// range form on single-column indexes (<c>value: u32</c>, <c>big: u64</c> stored as numeric) and
/// a two-column one (<c>sensor: String, at: i64</c>), the plans Postgres runs them with, and
/// <c>iter()</c> over a table larger than the module's memory (4 MiB here).
/// </summary>
public sealed class IndexTests() : OwnServerTest($"--Procyon:Runtime:MaxMemoryBytes={MemoryBytes}")
{
    private const int MemoryBytes = 4 << 20;

    private const string Readings = """
        [[
            {"sensor": "a", "at": -5, "value": 5, "big": 0},
            {"sensor": "a", "at": 3, "value": 10, "big": 1},
            {"sensor": "a", "at": 7, "value": 15, "big": 9223372036854775807},
            {"sensor": "a", "at": 100, "value": 15, "big": "9223372036854775808"},
            {"sensor": "B", "at": 1, "value": 20, "big": "18446744073709551615"},
            {"sensor": "b", "at": -100, "value": 25, "big": 2},
            {"sensor": "b", "at": 0, "value": 4294967295, "big": 3},
            {"sensor": "é", "at": 2, "value": 0, "big": 4},
            {"sensor": "ab", "at": 9, "value": 30, "big": 5}
        ]]
        """;

    protected override IEnumerable<(string Database, string Module)> Published => [("idx", "indexed")];

    [Theory]
    [InlineData("exact", "[15,15]")]
    [InlineData("ref", "[15,15]")]
    [InlineData("range", "[15,15,20]")]
    [InlineData("inclusive", "[15,15,20,25]")]
    [InlineData("to", "[0,5,10,15,15,20]")]
    [InlineData("to_inclusive", "[0,5,10,15,15,20,25]")]
    [InlineData("from", "[15,15,20,25,30,4294967295]")]
    public async Task A_single_column_filter_yields_the_rows_of_each_range_form_in_index_order(string form, string expected)
    {
        await AddReadingsAsync();

        Assert.Equal(expected, await CallOkAsync("values", $"""["{form}", 15, 25]"""));
    }

    [Fact]
    public async Task A_u64_column_stored_as_numeric_filters_in_unsigned_order_beyond_i64()
    {
        await AddReadingsAsync();

        Assert.Equal("""[3,4,5,"9223372036854775807"]""", await CallOkAsync("bigs", """["range", 3, "9223372036854775808"]"""));
        Assert.Equal("""[3,4,5,"9223372036854775807","9223372036854775808","18446744073709551615"]""", await CallOkAsync("bigs", """["from", 3, 0]"""));
        Assert.Equal("""["18446744073709551615"]""", await CallOkAsync("bigs", """["exact", "18446744073709551615", 0]"""));
        Assert.Equal("""[0,1,2]""", await CallOkAsync("bigs", """["to_inclusive", 0, 2]"""));
    }

    [Theory]
    [InlineData("to_inclusive", "9")]
    [InlineData("range", "8")]
    [InlineData("inclusive", "2")]
    [InlineData("from", "0")]
    [InlineData("exact", "0")]
    public async Task Bounds_beyond_the_bigint_an_auto_inc_u64_is_stored_as_are_above_every_row(string form, string expected)
    {
        await AddReadingsAsync();
        var from = form switch { "range" => "2", "inclusive" => "8", _ => "18446744073709551615" };

        Assert.Equal(expected, await CallOkAsync("ids", $"""["{form}", "{from}", "18446744073709551615"]"""));
    }

    [Fact]
    public async Task A_uuid_column_filters_in_the_order_of_its_bytes()
    {
        await Database.ExecuteAsync("""
            INSERT INTO db_idx.ticket (n, code) VALUES
                (1, 'ffffffff-ffff-ffff-ffff-ffffffffffff'), (2, '00000000-0000-0000-0000-000000000001'),
                (3, '80000000-0000-0000-0000-000000000000'), (4, '7fffffff-ffff-ffff-ffff-ffffffffffff')
            """);

        Assert.Equal("[4,3,1]", await CallOkAsync("tickets_from", """["7fffffff-ffff-ffff-ffff-ffffffffffff"]"""));
        Assert.Equal("[3,1]", await CallOkAsync("tickets_from", """["80000000-0000-0000-0000-000000000000"]"""));
    }

    [Theory]
    [InlineData("exact", "[3]")]
    [InlineData("ref", "[3]")]
    [InlineData("range", "[3,7]")]
    [InlineData("inclusive", "[3,7,100]")]
    [InlineData("to", "[-5,3,7]")]
    [InlineData("to_inclusive", "[-5,3,7,100]")]
    [InlineData("from", "[3,7,100]")]
    public async Task A_two_column_filter_takes_a_value_of_the_first_and_each_range_form_of_the_second(string form, string expected)
    {
        await AddReadingsAsync();

        Assert.Equal(expected, await CallOkAsync("sensor_ats", $"""["a", "{form}", 3, 100]"""));
    }

    [Fact]
    public async Task A_two_column_index_filters_by_a_prefix_and_compares_strings_by_bytes_as_Rust_does()
    {
        await AddReadingsAsync();

        Assert.Equal("[-5,3,7,100]", await CallOkAsync("sensor_prefix", """["a"]"""));
        Assert.Equal("[-100,0]", await CallOkAsync("sensor_prefix", """["b"]"""));
        Assert.Equal("[1]", await CallOkAsync("sensor_prefix", """["B"]"""));
        Assert.Equal("[]", await CallOkAsync("sensor_prefix", """["c"]"""));
        // Bytes: "B" (0x42) < "a" < "ab" < "b" < "é" (0xC3 0xA9), whatever the database's locale says.
        Assert.Equal("""["B","a","a","a","a","ab"]""", await CallOkAsync("sensors_between", """["B", "b"]"""));
        Assert.Equal(["b", "b", "é"], JsonSerializer.Deserialize<string[]>(await CallOkAsync("sensors_between", """["b", "ë"]"""))!);
    }

    [Fact]
    public async Task Delete_by_range_deletes_exactly_the_matching_rows_and_returns_their_count()
    {
        await AddReadingsAsync();

        Assert.Equal("3", await CallOkAsync("delete_values", """["range", 10, 20]"""));
        Assert.Equal("[0,5,20,25,30,4294967295]", await CallOkAsync("values", """["from", 0, 0]"""));
        Assert.Equal("0", await CallOkAsync("delete_values", """["range", 10, 20]"""));
        Assert.Equal("1", await CallOkAsync("delete_values", """["exact", 4294967295, 0]"""));
        Assert.Equal("2", await CallOkAsync("delete_values", """["to_inclusive", 0, 5]"""));
        Assert.Equal("1", await CallOkAsync("delete_sensor_ats", """["b", "to", 0, 0]"""));
        Assert.Equal("[]", await CallOkAsync("sensor_prefix", """["b"]"""));
        Assert.Equal("0", await CallOkAsync("delete_sensor_ats", """["ab", "exact", 8, 0]"""));
        Assert.Equal("1", await CallOkAsync("delete_sensor_ats", """["ab", "exact", 9, 0]"""));
        Assert.Equal(["B|1|20"], await Database.QueryAsync("""SELECT sensor, at, value FROM db_idx.reading ORDER BY sensor COLLATE "C", at"""));
    }

    [Fact]
    public async Task The_statements_filters_run_scan_the_index_the_host_created()
    {
        await Database.ExecuteAsync("""
            INSERT INTO db_idx.reading (sensor, at, value, big, score) SELECT 's' || (g % 50), g, g, g, g FROM generate_series(1, 10000) g;
            ANALYZE db_idx.reading;
            """);
        var indexes = await Database.QueryAsync("SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = 'db_idx' AND tablename = 'reading' AND indexname <> 'reading_pkey' ORDER BY indexname");
        Assert.Equal(5, indexes.Count);
        var table = Server.Services.GetRequiredService<ModuleRegistry>().Find("idx")!.Tables["reading"];
        Assert.Equal(["value", "big", "score", "sensor,at", "id"], table.Indexes.Select(i => string.Join(",", i.Columns.Select(c => c.Name))));

        // value in [100, 200); big exactly 150; sensor 's7' with at in (100, 2000]; sensor from "s1" to "s11".
        var value = Bounds(0, w => { w.WriteU8(0); w.WriteU32(100); w.WriteU8(1); w.WriteU32(200); });
        var big = Bounds(1, w => { w.WriteU64(150); w.WriteU8(2); w.WriteU8(2); });
        var sensorAt = Bounds(1, w => { w.WriteString("s7"); w.WriteU8(1); w.WriteU64(100); w.WriteU8(0); w.WriteU64(2000); });
        var sensors = Bounds(0, w => { w.WriteU8(0); w.WriteString("s1"); w.WriteU8(1); w.WriteString("s11"); });
        foreach (var (index, bounds, rows) in new[] { (0, value, 100), (1, big, 1), (3, sensorAt, 38), (3, sensors, 400) })
        {
            var (sql, parameters) = table.Indexes[index].Select(bounds);
            var plan = await ExplainAsync(sql, parameters);
            var created = indexes.Single(i => i.Replace(" COLLATE \"C\"", "", StringComparison.Ordinal).Contains($"({string.Join(", ", table.Indexes[index].Columns.Select(c => c.Name))})", StringComparison.Ordinal)).Split(':')[0];
            Assert.True(plan.Contains($"Index Scan using {created}", StringComparison.Ordinal) || plan.Contains($"Index Only Scan using {created}", StringComparison.Ordinal) || plan.Contains($"Bitmap Index Scan on {created}", StringComparison.Ordinal), plan);
            Assert.DoesNotContain("Seq Scan", plan, StringComparison.Ordinal);
            Assert.Equal(rows, await CountAsync(sql, parameters));
            var (delete, deleteParameters) = table.Indexes[index].Delete(bounds);
            Assert.DoesNotContain("Seq Scan", await ExplainAsync(delete, deleteParameters), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Iter_walks_a_table_larger_than_the_modules_memory_a_bounded_chunk_at_a_time()
    {
        const int Rows = 100_000;
        await Database.ExecuteAsync($"INSERT INTO db_idx.blob (id, payload) SELECT g, repeat('x', 100) FROM generate_series(1, {Rows}) g");
        Assert.True(Rows * 100L > 2 * MemoryBytes);

        Assert.Equal($$"""{"rows":{{Rows}},"bytes":{{Rows * 100L}},"id_sum":{{Rows * (Rows + 1L) / 2}}}""", await CallOkAsync("blob_stats", "[]"));

        // Holding every row at once does not fit: the limit is real.
        var collected = await Server.CallAsync("idx", "blob_collect", "[]");
        Assert.Contains("out of memory", (await AssertProblemAsync(collected, HttpStatusCode.InternalServerError)).Detail(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Iterators_dropped_early_close_and_leaked_or_stale_ones_fail_with_a_clear_message()
    {
        await Database.ExecuteAsync("INSERT INTO db_idx.blob (id, payload) SELECT g, 'p' || g FROM generate_series(1, 1000) g");

        Assert.Equal("[10,10,1000]", await CallOkAsync("blob_heads", "[10]"));
        Assert.Equal("[1000,1000,1000]", await CallOkAsync("blob_heads", "[5000]"));
        Assert.Equal("1000", await CallOkAsync("leak_iterators", "[63]"));

        var leaked = await Server.CallAsync("idx", "leak_iterators", "[64]");
        Assert.Contains("more than 64 table iterators are open at once", (await AssertProblemAsync(leaked, HttpStatusCode.InternalServerError)).Detail(), StringComparison.Ordinal);
        var stale = await Server.CallAsync("idx", "stale_iterator", "[]");
        Assert.Contains("is open in this transaction", (await AssertProblemAsync(stale, HttpStatusCode.InternalServerError)).Detail(), StringComparison.Ordinal);
        Assert.Equal("1000", await CallOkAsync("leak_iterators", "[0]"));
    }

    [Theory]
    [InlineData(9, "00000000", "table reading has no index 9")]
    [InlineData(3, "03000000", "index by_sensor_at of table reading has 2 columns; the filter gave 3 values")]
    [InlineData(2, "000000000000000000000000000002", "index score of table reading: column score (double precision) cannot be filtered")]
    [InlineData(0, "00000000070000000002", "unknown bound 7")]
    [InlineData(0, "01000000050000000000000000", "a range needs a column after the 1 values given")]
    [InlineData(0, "0100000005000000020202", "bytes left over after the bounds")]
    [InlineData(0, "01000000", "")]
    public async Task Bounds_the_SDK_would_never_send_fail_the_call_and_the_server_goes_on(int index, string bounds, string expected)
    {
        await AddReadingsAsync();

        var response = await Server.CallAsync("idx", "raw_filter", $"""[{index}, "{bounds}"]""");

        Assert.Contains(expected, (await AssertProblemAsync(response, HttpStatusCode.InternalServerError)).Detail(), StringComparison.Ordinal);
        Assert.Equal("[15,15]", await CallOkAsync("values", """["exact", 15, 0]"""));
    }

    private async Task AddReadingsAsync() => await CallOkAsync("add", Readings);

    private async Task<string> CallOkAsync(string function, string json)
    {
        var response = await Server.CallAsync("idx", function, json);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{function}: {(int)response.StatusCode} {body}");
        return body;
    }

    /// <summary>Index bounds as the SDK sends them: the prefix's count and values, then the two ends of the range.</summary>
    private static byte[] Bounds(uint prefix, Action<BsatnWriter> rest)
    {
        var writer = new BsatnWriter();
        writer.WriteU32(prefix);
        rest(writer);
        return writer.WrittenSpan.ToArray();
    }

    private async Task<string> ExplainAsync(string sql, List<(TableColumn Column, object Value)> parameters) =>
        string.Join("\n", await ReadAsync($"EXPLAIN {sql}", parameters));

    private async Task<int> CountAsync(string sql, List<(TableColumn Column, object Value)> parameters) =>
        (await ReadAsync(sql, parameters)).Count;

    /// <summary>Runs the host's statement with its parameters typed as the host types them, in a transaction rolled back after.</summary>
    private async Task<List<string>> ReadAsync(string sql, List<(TableColumn Column, object Value)> parameters)
    {
        await using var connection = new NpgsqlConnection(Database.ConnectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        foreach (var (column, value) in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = column.Storage.DbType, Value = value });
        }
        var lines = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                lines.Add(Convert.ToString(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture)!);
            }
        }
        await transaction.RollbackAsync();
        return lines;
    }
}
