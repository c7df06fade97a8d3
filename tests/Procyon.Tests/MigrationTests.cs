using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;
using Procyon.Sats;
using Procyon.Storage.Tables;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Testing.HandmadeModule;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// Automatic migrations over HTTP on real Postgres: migrate_v1 republished as migrate_v2 adds
/// columns with defaults and an index and makes its table public; handmade modules try what no
/// migration does; a migration that fails, or waits too long for a lock, leaves nothing.
/// </summary>
public sealed class MigrationTests() : OwnServerTest("--Procyon:Runtime:MigrationLockTimeout=00:00:00.500")
{
    private const string V2Definition = "id: u64 [PrimaryKey, AutoIncrement]; name: String [Indexed]; score: u32; title: String; rival: Option<i64>; tags: Vec<String>";

    [Fact]
    public async Task A_republish_adds_columns_with_defaults_an_index_and_public_access_and_keeps_the_rows()
    {
        Assert.Equal(HttpStatusCode.Created, (await Server.PublishAsync("game", "migrate_v1")).StatusCode);
        await AddPlayerAsync("Ada");
        await AddPlayerAsync("Bob");
        await AssertProblemAsync(await Server.SqlAsync("game", "SELECT name FROM player"), HttpStatusCode.Forbidden);

        Assert.Equal(HttpStatusCode.OK, (await Server.PublishAsync("game", "migrate_v2")).StatusCode);

        await AddPlayerAsync("Cy");
        Assert.Equal(
            """[{"id":1,"name":"Ada","score":100,"title":"rookie","rival":null,"tags":["new"]},{"id":2,"name":"Bob","score":100,"title":"rookie","rival":null,"tags":["new"]},{"id":3,"name":"Cy","score":7,"title":"pro","rival":-1,"tags":[]}]""",
            await PlayersAsync());
        var anonymous = await Server.SqlAsync("game", "SELECT name, score, title FROM player ORDER BY id");
        Assert.Equal(HttpStatusCode.OK, anonymous.StatusCode);
        Assert.Equal("""[["Ada",100,"rookie"],["Bob",100,"rookie"],["Cy",7,"pro"]]""", JsonDocument.Parse(await anonymous.Content.ReadAsStringAsync()).RootElement.GetProperty("rows").GetRawText());
        // In the "C" collation, as the SDK's range filters compare strings (bytes, Rust's order).
        Assert.Equal(["player_name_idx|CREATE INDEX player_name_idx ON db_game.player USING btree (name COLLATE \"C\")"], await Database.QueryAsync("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'db_game' AND indexdef LIKE '%(name %'"));
        Assert.Contains("player_name_idx", await ExplainAsync("SELECT * FROM db_game.player WHERE name COLLATE \"C\" = 'Bob'"));
        Assert.Equal(V2Definition, await Database.ScalarAsync<string>("SELECT definition FROM procyon.tables WHERE db = 'game' AND name = 'player'"));

        Assert.Equal(HttpStatusCode.OK, (await Server.PublishAsync("game", "migrate_v2")).StatusCode);

        Assert.Equal(1, await Database.ScalarAsync<long>("SELECT count(*) FROM pg_indexes WHERE schemaname = 'db_game' AND indexdef LIKE '%(name %'"));
        Assert.Equal(6, await Database.ScalarAsync<long>("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'db_game' AND table_name = 'player'"));
        Assert.Equal(3, JsonDocument.Parse(await PlayersAsync()).RootElement.GetArrayLength());
    }

    [Fact]
    public async Task A_call_asleep_on_the_old_code_writes_its_row_after_the_migration()
    {
        (await Server.PublishAsync("sleepy", "migrate_v1")).EnsureSuccessStatusCode();
        // Sleeps past DurableSleepAfter (1 s), so it is also written to Postgres as it sleeps.
        var call = Server.CallAsync("sleepy", "add_player_later", """["Zed", 1500]""");
        await Task.Delay(300);

        Assert.Equal(HttpStatusCode.OK, (await Server.PublishAsync("sleepy", "migrate_v2")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await call).StatusCode);
        // The old code inserted without the new columns: the kept defaults filled them.
        Assert.Equal(["Zed|100|rookie|"], await Database.QueryAsync("SELECT name, score, title, rival FROM db_sleepy.player"));
    }

    [Fact]
    public async Task A_public_table_made_private_is_read_by_the_owner_alone()
    {
        (await Server.PublishBytesAsync("closing", Shape("base"))).EnsureSuccessStatusCode();
        await Database.ExecuteAsync("INSERT INTO db_closing.t VALUES (1, 'one')");
        Assert.Equal(HttpStatusCode.OK, (await Server.SqlAsync("closing", "SELECT name FROM t")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await Server.PublishBytesAsync("closing", Shape("private"))).StatusCode);

        var problem = await AssertProblemAsync(await Server.SqlAsync("closing", "SELECT name FROM t"), HttpStatusCode.Forbidden);
        Assert.Contains("only the owner's token reads private tables", problem.Detail());
        Assert.Equal(HttpStatusCode.OK, (await Server.SqlAsync("closing", "SELECT name FROM t", await Server.OwnerTokenAsync())).StatusCode);
    }

    public static TheoryData<string, string> Refused() => new()
    {
        { "middle", "column extra is added between existing columns (only at the end)" },
        { "no default", "column extra is added without a #[default(value)]" },
        { "type", "column name changes from String to i32" },
        { "removed", "column name would be removed" },
        { "unique", "column name's flags change from None to Unique" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task Changes_no_migration_makes_are_409_naming_them_and_what_may_change(string change, string expected)
    {
        (await Server.PublishBytesAsync("shape", Shape("base"))).EnsureSuccessStatusCode();

        var problem = await AssertProblemAsync(await Server.PublishBytesAsync("shape", Shape(change)), HttpStatusCode.Conflict);

        Assert.Contains("table t changes from (id: i32 [PrimaryKey]; name: String)", problem.Detail());
        Assert.Contains(expected, problem.Detail());
        Assert.Contains("add columns at the end of a table with #[default(value)], add #[index(btree)] to existing columns and make tables public or private", problem.Detail());
        Assert.Equal(["id", "name"], await Database.QueryAsync("SELECT column_name FROM information_schema.columns WHERE table_schema = 'db_shape' AND table_name = 't' ORDER BY ordinal_position"));
        Assert.Equal(HttpStatusCode.OK, (await Server.PublishBytesAsync("shape", Shape("base"))).StatusCode);
    }

    [Fact]
    public async Task Defaults_of_every_storage_are_filled_in_as_the_value_they_encode()
    {
        (await Server.PublishBytesAsync("kinds", Shape("base"))).EnsureSuccessStatusCode();
        await Database.ExecuteAsync("INSERT INTO db_kinds.t VALUES (1, 'one')");

        Assert.Equal(HttpStatusCode.OK, (await Server.PublishBytesAsync("kinds", Shape("kinds"))).StatusCode);

        Assert.Equal(
            ["1|one|it's \\x|00ff|-170141183460469231731687303715884105728|-1.5|2001-02-03 04:05:06.000007|[\"a\", \"b\"]|"],
            await Database.QueryAsync("SELECT id, name, text, encode(bytes, 'hex'), big::text, real, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), list, maybe FROM db_kinds.t"));
    }

    [Fact]
    public async Task A_migration_that_Postgres_refuses_leaves_nothing_and_the_old_module_serves()
    {
        (await Server.PublishAsync("broken", "migrate_v1")).EnsureSuccessStatusCode();
        // Random hex does not compress: far beyond the 2,704 bytes a btree entry may hold.
        await AddPlayerAsync(Convert.ToHexString(RandomNumberGenerator.GetBytes(10_000)), "broken");
        var definition = await Database.ScalarAsync<string>("SELECT definition FROM procyon.tables WHERE db = 'broken'");

        var problem = await AssertProblemAsync(await Server.PublishAsync("broken", "migrate_v2"), HttpStatusCode.Conflict);

        Assert.Contains("migrating table player failed, so nothing was published", problem.Detail());
        Assert.Contains("index row requires", problem.Detail());
        Assert.Equal(["id", "name"], await Database.QueryAsync("SELECT column_name FROM information_schema.columns WHERE table_schema = 'db_broken' AND table_name = 'player' ORDER BY ordinal_position"));
        Assert.Equal(definition, await Database.ScalarAsync<string>("SELECT definition FROM procyon.tables WHERE db = 'broken'"));
        await AssertProblemAsync(await Server.SqlAsync("broken", "SELECT id FROM player"), HttpStatusCode.Forbidden);
        await AddPlayerAsync("small", "broken");
        Assert.Equal(2, JsonDocument.Parse(await PlayersAsync("broken")).RootElement.GetArrayLength());
    }

    [Fact]
    public async Task A_table_another_transaction_holds_makes_the_migration_give_up_with_503_after_its_lock_timeout()
    {
        (await Server.PublishAsync("busy", "migrate_v1")).EnsureSuccessStatusCode();
        await AddPlayerAsync("Ada", "busy");
        await using var holder = new NpgsqlConnection(Database.ConnectionString);
        await holder.OpenAsync();
        await using (var transaction = await holder.BeginTransactionAsync())
        {
            await using (var read = new NpgsqlCommand("SELECT count(*) FROM db_busy.player", holder, transaction))
            {
                await read.ExecuteScalarAsync();
            }
            var watch = Stopwatch.StartNew();

            var response = await Server.PublishAsync("busy", "migrate_v2");

            var problem = await AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable);
            Assert.Contains("table player stayed in use by other transactions for longer than 500 ms", problem.Detail());
            Assert.Equal("1", response.Headers.RetryAfter?.ToString());
            Assert.InRange(watch.Elapsed, TimeSpan.FromMilliseconds(400), TimeSpan.FromSeconds(10));
            Assert.Equal(2, await Database.ScalarAsync<long>("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'db_busy' AND table_name = 'player'"));
            await AddPlayerAsync("Bob", "busy");
        }

        Assert.Equal(HttpStatusCode.OK, (await Server.PublishAsync("busy", "migrate_v2")).StatusCode);
        Assert.Equal(["Ada|100", "Bob|100"], await Database.QueryAsync("SELECT name, score FROM db_busy.player ORDER BY id"));
    }

    private async Task AddPlayerAsync(string name, string database = "game") =>
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync(database, "add_player", JsonSerializer.Serialize(new[] { name }))).StatusCode);

    private async Task<string> PlayersAsync(string database = "game")
    {
        var response = await Server.CallAsync(database, "players", "");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>The plan Postgres picks when sequential scans are its last resort.</summary>
    private async Task<string> ExplainAsync(string query)
    {
        await using var connection = new NpgsqlConnection(Database.ConnectionString);
        await connection.OpenAsync();
        await using (var off = new NpgsqlCommand("SET enable_seqscan = off", connection))
        {
            await off.ExecuteNonQueryAsync();
        }
        await using var explain = new NpgsqlCommand("EXPLAIN " + query, connection);
        await using var reader = await explain.ExecuteReaderAsync();
        var plan = new List<string>();
        while (await reader.ReadAsync())
        {
            plan.Add(reader.GetString(0));
        }
        return string.Join("\n", plan);
    }

    /// <summary>
    /// Table <c>t</c> as first published (<c>id: i32</c> key, <c>name: String</c>), or changed: a column
    /// in the middle, one at the end without a default, a type changed, a column removed, a unique
    /// constraint added, made <c>private</c>, or (<c>kinds</c>) columns of every storage added with defaults.
    /// </summary>
    private static byte[] Shape(string change)
    {
        var module = new HandmadeModule();
        var id = ("id", I32, (byte)ColumnFlags.PrimaryKey, (byte[]?)null);
        var name = ("name", Text, (byte)0, (byte[]?)null);
        var extra = ("extra", I32, (byte)0, (byte[]?)null);
        (string Name, AlgebraicType Type, byte Flags, byte[]? Default)[] columns = change switch
        {
            "base" or "private" => [id, name],
            "middle" => [id, extra with { Item4 = Bsatn(w => w.WriteU32(0)) }, name],
            "no default" => [id, name, extra],
            "type" => [id, name with { Item2 = I32 }],
            "removed" => [id],
            "unique" => [id, name with { Item3 = (byte)ColumnFlags.Unique }],
            "kinds" =>
            [
                id, name,
                ("text", Text, 0, Bsatn(w => w.WriteString("it's \\x"))),
                ("bytes", AlgebraicType.Array(AlgebraicType.Primitive(TypeKind.U8)), 0, Bsatn(w => { w.WriteU32(2); w.WriteBytes([0, 255]); })),
                ("big", AlgebraicType.Primitive(TypeKind.I128), 0, Bsatn(w => w.WriteU128((UInt128)Int128.MinValue))),
                ("real", AlgebraicType.Primitive(TypeKind.F64), 0, Bsatn(w => w.WriteU64(BitConverter.DoubleToUInt64Bits(-1.5)))),
                ("at", module.Type("Timestamp", Struct(("__timestamp_micros_since_unix_epoch__", AlgebraicType.Primitive(TypeKind.I64)))), 0,
                    Bsatn(w => w.WriteU64((ulong)(new DateTimeOffset(2001, 2, 3, 4, 5, 6, TimeSpan.Zero).ToUnixTimeMilliseconds() * 1000 + 7)))),
                ("list", AlgebraicType.Array(Text), 0, Bsatn(w => { w.WriteU32(2); w.WriteString("a"); w.WriteString("b"); })),
                ("maybe", AlgebraicType.Option(I32), 0, Bsatn(w => w.WriteU8(1))),
            ],
            _ => throw new ArgumentOutOfRangeException(nameof(change), change, "no such shape"),
        };
        var row = Struct([.. columns.Select(c => ((string?)c.Name, c.Type))]);
        var defaults = columns.Where(c => c.Default is not null).ToDictionary(c => c.Name, c => c.Default!);
        return module.Table("t", row, [.. columns.Select(c => (c.Name, c.Flags))], defaults: defaults, isPublic: change != "private").ToWasm();
    }

    private static byte[] Bsatn(Action<BsatnWriter> write)
    {
        var writer = new BsatnWriter();
        write(writer);
        return writer.WrittenSpan.ToArray();
    }
}
