using System.Net;
using Procyon.Runtime;
using Procyon.Sats;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Testing.HandmadeModule;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// Hand-made modules whose descriptions no SDK build would write, published as an attacker
/// would: each is refused with a 400 that says why, and the server goes on serving.
/// </summary>
public sealed class HostileDescriptionTests(ServerFixture fixture) : ServerTest(fixture)
{
    private const byte PrimaryKey = 1;
    private const byte AutoIncrement = 2;
    private const byte Indexed = 8;

    private static readonly (string Name, AlgebraicType Type, byte Flags) ScheduledId = ("scheduled_id", U64, PrimaryKey | AutoIncrement);
    private static readonly (string Name, AlgebraicType Type, byte Flags) ScheduledAtColumn = ("scheduled_at", ScheduleAt, 0);

    /// <summary>Each case: its description, and a piece of the detail its 400 must carry.</summary>
    private static readonly Dictionary<string, (Func<byte[]> Describe, string Expected)> Cases = new()
    {
        ["a type nested 100 levels deep"] = (() => Types(Enumerable.Range(0, 100).Aggregate(I32, (type, _) => AlgebraicType.Array(type))), "nested deeper than 64 levels"),
        ["a typespace of 2^31 - 1 types"] = (() => [0xff, 0xff, 0xff, 0x7f], "exceeds"),
        ["a struct of 2^32 - 1 fields"] = (() => [1, 0, 0, 0, (byte)TypeKind.Product, 0xff, 0xff, 0xff, 0xff], "exceeds"),
        ["a description over 256 KiB"] = (() => Types([.. Enumerable.Range(0, 4).Select(_ => Fields(1000, i => $"{new string('f', 58)}{i:d5}"))]), "the limit is 262144"),
        ["a cycle of references only"] = (() => Types(AlgebraicType.Ref(1), AlgebraicType.Ref(0)), "in a cycle"),
        ["a type that is a reference to itself"] = (() => Types(AlgebraicType.Ref(0)), "in a cycle"),
        ["a reference outside the typespace"] = (() => Types(Struct(("a", AlgebraicType.Ref(7)))), "outside the typespace"),
        ["a parameter of a type outside the typespace"] = (() => Function("f", Struct(("a", AlgebraicType.Array(AlgebraicType.Ref(3))))), "outside the typespace"),
        ["a chain of 100,000 references"] = (() => Types([.. Enumerable.Range(1, 99_999).Select(i => AlgebraicType.Ref((uint)i)), Struct()]), "the limit is"),
        ["4,097 types"] = (() => Types([.. Enumerable.Repeat(Struct(), ModuleLimits.MaxTypes + 1)]), "4097 named types; the limit is 4096"),
        ["1,025 functions"] = (() => Module(m => Enumerable.Range(0, 1025).Aggregate(m, (module, i) => module.Function($"f{i}", Struct()))), "1025 functions; the limit is 1024"),
        ["65 parameters"] = (() => Function("f", Fields(65, i => $"p{i}")), "65 parameters; the limit is 64"),
        ["a struct of 1,025 fields"] = (() => Types(Fields(1025, i => $"f{i}")), "1025 fields in one struct; the limit is 1024"),
        ["an enum of 257 variants"] = (() => Types(Enum([.. Enumerable.Range(0, 257).Select(i => ((string?)$"V{i}", Struct()))])), "257 variants in one enum; the limit is 256"),
        ["an enum without variants"] = (() => Types(Enum()), "at least one variant"),
        ["257 tables"] = (() => Module(m => Enumerable.Range(0, 257).Aggregate(m, (module, i) => module.Table($"t{i}", Struct(("a", I32)), [("a", 0)]))), "257 tables; the limit is 256"),
        ["a table of 257 columns"] = (() => Table(Enumerable.Range(0, 257).Select(i => ($"c{i}", I32, (byte)0)).ToArray()), "257 columns; the limit is 256"),
        ["a table of 33 indexed columns"] = (() => Table(Enumerable.Range(0, 33).Select(i => ($"c{i}", I32, Indexed)).ToArray()), "33 primary-key, unique and indexed columns; the limit is 32"),
        ["two functions named f"] = (() => Module(m => m.Function("f", Struct()).Function("f", Struct())), "function f is defined more than once"),
        ["two parameters named a"] = (() => Function("f", Struct(("a", I32), ("a", I32))), "parameter a is defined more than once"),
        ["two fields named a"] = (() => Types(Struct(("a", I32), ("a", Text))), "field a is defined more than once"),
        ["two variants named A"] = (() => Types(Enum(("A", I32), ("A", Struct()))), "variant A is defined more than once"),
        ["two types named T"] = (() => Module(m => m.Name("T", 0).Name("T", 1), Struct(), Struct()), "type T is defined more than once"),
        ["two tables named t"] = (() => Module(m => m.Table("t", Struct(("a", I32)), [("a", 0)]).Table("t", Struct(("a", I32)), [("a", 0)])), "table t is defined more than once"),
        ["a function named \"\""] = (() => Function("", Struct()), "function name \"\" is not an identifier"),
        ["a parameter named \"\""] = (() => Function("f", Struct(("", I32))), "parameter name \"\" is not an identifier"),
        ["a field named \"\""] = (() => Types(Struct(("", I32))), "field name \"\" is not an identifier"),
        ["a variant named \"\""] = (() => Types(Enum(("", I32))), "variant name \"\" is not an identifier"),
        ["a type named \"\""] = (() => Module(m => m.Name("", 0), Struct()), "type name \"\" is not an identifier"),
        ["a table named \"\""] = (() => Module(m => m.Table("", Struct(("a", I32)), [("a", 0)])), "table name \"\" is not an identifier"),
        ["a parameter without a name"] = (() => Function("f", Struct((null, I32))), "a parameter has no name"),
        ["a field without a name"] = (() => Types(Struct((null, I32))), "a field has no name"),
        ["a variant without a name"] = (() => Types(Enum((null, I32))), "a variant has no name"),
        ["a type without a name"] = (() => Module(m => m, Struct()), "each of the 1 types needs one name"),
        ["a name for a type that does not exist"] = (() => Module(m => m.Name("Ghost", 5)), "each of the 0 types needs one name"),
        ["a function with unknown flags"] = (() => Module(m => m.Function("f", Struct(), flags: 0x80)), "function 'f' has unknown flags 128"),
        ["a function named a/b"] = (() => Function("a/b", Struct()), "\"a/b\" is not an identifier"),
        ["a function named {fn}"] = (() => Function("{fn}", Struct()), "\"{fn}\" is not an identifier"),
        ["a function named 1st"] = (() => Function("1st", Struct()), "\"1st\" is not an identifier"),
        ["a function named héllo"] = (() => Function("héllo", Struct()), "is not an identifier"),
        ["a field named a b"] = (() => Types(Struct(("a b", I32))), "\"a b\" is not an identifier"),
        ["a type named Ty-pe"] = (() => Module(m => m.Name("Ty-pe", 0), Struct()), "\"Ty-pe\" is not an identifier"),
        ["a table named with 64 bytes"] = (() => Module(m => m.Table(new string('t', 64), Struct(("a", I32)), [("a", 0)])), "is not an identifier"),
        ["a column named __procyon_due"] = (() => Table(("__procyon_due", I32, 0)), "column name __procyon_due is reserved"),
        ["a column named xmin"] = (() => Table(("xmin", I32, 0)), "column name xmin is reserved"),
        ["a column with unknown flags"] = (() => Table(("a", I32, 0x20)), "unknown flags 20"),
        ["a default that is not a value of its column's type"] = (() => Defaulted(I32, 0, [1, 2]), "the #[default] of column a is not a value of its type i32: BSATN ended early"),
        ["a default with bytes left over"] = (() => Defaulted(I32, 0, [1, 2, 3, 4, 5]), "the #[default] of column a is not a value of its type i32: 1 bytes left over"),
        ["a default of an enum's missing variant"] = (() => Defaulted(Enum(("A", Struct()), ("B", Struct())), 0, [7]), "sum tag 7 is out of range"),
        ["a default on a unique column"] = (() => Defaulted(I32, 4, [1, 0, 0, 0]), "a column with a default cannot be #[primary_key], #[unique] or #[auto_inc]"),
        ["a default timestamp past year 9999"] = (() => Defaulted(Struct(("__timestamp_micros_since_unix_epoch__", AlgebraicType.Primitive(TypeKind.I64))), 0, BitConverter.GetBytes(long.MaxValue)), "the #[default] of column a cannot be stored: timestamp"),
        ["a column list that misses a field"] = (() => Module(m => m.Table("t", Struct(("a", I32), ("b", I32)), [("a", 0)])), "describes 1 columns; its row has 2 fields"),
        ["a column list that names another field"] = (() => Module(m => m.Table("t", Struct(("a", I32), ("b", I32)), [("a", 0), ("c", 0)])), "describes column 1 as \"c\""),
        ["a row that is not a struct"] = (() => Module(m => m.Table("t", I32, [])), "needs a struct with at least one field"),
        ["a row without fields"] = (() => Module(m => m.Table("t", Struct(), [])), "needs a struct with at least one field"),
        ["a scheduled_id that is not the auto_inc primary key"] = (() => Scheduled([ScheduledId with { Flags = PrimaryKey }, ScheduledAtColumn]), "needs the column #[primary_key] #[auto_inc] scheduled_id: u64"),
        ["a scheduled_id of type i64"] = (() => Scheduled([ScheduledId with { Type = AlgebraicType.Primitive(TypeKind.I64) }, ScheduledAtColumn]), "scheduled_id: u64"),
        ["a table named like another's primary-key index"] = (() => Module(m => m.Table("t", Struct(("a", I32)), [("a", PrimaryKey)]).Table("t_pkey", Struct(("a", I32)), [("a", 0)])), "table t_pkey cannot be created"),
        ["a table named like another's identity sequence"] = (() => Module(m => m.Table("t", Struct(("id", U64)), [("id", PrimaryKey | AutoIncrement)]).Table("t_id_seq", Struct(("a", I32)), [("a", 0)])), "table t_id_seq cannot be created"),
        ["a scheduled table keyed by more than scheduled_id"] = (() => Scheduled([ScheduledId, ScheduledAtColumn, ("shard", I32, PrimaryKey)]), "scheduled_id must be its only #[primary_key] column, not shard too"),
        ["a scheduled table without scheduled_at"] = (() => Scheduled([ScheduledId]), "needs the column scheduled_at: ScheduleAt"),
        ["a scheduled_at that is a timestamp"] = (() => Scheduled([ScheduledId, ScheduledAtColumn with { Type = ScheduleAt.Elements[1].Type }]), "scheduled_at: ScheduleAt"),
        ["a scheduled_at with its variants swapped"] = (() => Scheduled([ScheduledId, ScheduledAtColumn with { Type = AlgebraicType.Sum([ScheduleAt.Elements[1], ScheduleAt.Elements[0]]) }]), "scheduled_at: ScheduleAt"),
        ["a scheduled table naming no function"] = (() => Scheduled([ScheduledId, ScheduledAtColumn], target: "nowhere"), "names \"nowhere\", which is not a reducer or procedure"),
        ["a scheduled table naming the init reducer"] = (() => Scheduled([ScheduledId, ScheduledAtColumn], kind: FunctionKind.InitReducer), "which is not a reducer or procedure"),
        ["a scheduled function of two parameters"] = (() => Scheduled([ScheduledId, ScheduledAtColumn], row => Struct(("job", row), ("extra", I32))), "must take exactly one parameter"),
        ["a scheduled function taking another type"] = (() => Scheduled([ScheduledId, ScheduledAtColumn], _ => Struct(("job", I32))), "must take exactly one parameter"),
        ["a scheduled table retried 1,000 times"] = (() => Scheduled([ScheduledId, ScheduledAtColumn], retry: (1000, 1_000_000)), "retries must be 1 to 100"),
        ["a scheduled table retried without a backoff"] = (() => Scheduled([ScheduledId, ScheduledAtColumn], retry: (3, 0)), "backoff 1 ms to 1 day"),
        ["an index of a table the module does not have"] = (() => WithIndexes(m => m.Index("ghost", "by_a", 0)), "index by_a names table ghost, which the module does not have"),
        ["an index of 7 columns"] = (() => WithIndexes(m => m.Index("t", "by_all", 0, 1, 2, 3, 4, 5, 6)), "index by_all has 7 columns; an index has 1 to 6"),
        ["an index without columns"] = (() => WithIndexes(m => m.Index("t", "by_none")), "index by_none has 0 columns"),
        ["an index of a column the table lacks"] = (() => WithIndexes(m => m.Index("t", "by_z", 0, 9)), "index by_z names column 9; the table has 7"),
        ["an index naming a column twice"] = (() => WithIndexes(m => m.Index("t", "by_aa", 0, 0)), "index by_aa names a column more than once"),
        ["two indexes named by_a"] = (() => WithIndexes(m => m.Index("t", "by_a", 0).Index("t", "by_a", 1)), "index by_a is defined more than once"),
        ["an index named a-b"] = (() => WithIndexes(m => m.Index("t", "a-b", 0)), "index name \"a-b\" is not an identifier"),
        ["33 indexes of one table"] = (() => WithIndexes(m => Enumerable.Range(0, 33).Aggregate(m, (module, i) => module.Index("t", $"i{i}", 0))), "more than 32 declared indexes"),
        ["two init reducers"] = (() => Module(m => m.Function("a", Struct(), kind: FunctionKind.InitReducer).Function("b", Struct(), kind: FunctionKind.InitReducer)), "one #[reducer(init)]"),
        ["two client_connected reducers"] = (() => Module(m => m.Function("a", Struct(), kind: FunctionKind.ClientConnected).Function("b", Struct(), kind: FunctionKind.ClientConnected)), "one #[reducer(client_connected)], not a and b"),
        ["a client_disconnected reducer with a parameter"] = (() => Module(m => m.Function("gone", Struct(("why", I32)), kind: FunctionKind.ClientDisconnected)), "the #[reducer(client_disconnected)] gone takes no parameters"),
        ["a scheduled table naming the client_connected reducer"] = (() => Scheduled([ScheduledId, ScheduledAtColumn], kind: FunctionKind.ClientConnected), "which is not a reducer or procedure"),
        ["an allowed HTTP host that is a URL"] = (() => WithHttpHosts(1, "http://evil.example/"), "allowed_http_hosts! lists \"http://evil.example/\", which is not a host name"),
        ["65 allowed HTTP hosts"] = (() => WithHttpHosts(65, [.. Enumerable.Range(0, 65).Select(i => $"h{i}.example")]), "the module has 65 hosts in allowed_http_hosts!; the limit is 64"),
        ["2^32 - 1 allowed HTTP hosts"] = (() => WithHttpHosts(uint.MaxValue), "exceeds"),
    };

    public static TheoryData<string> CaseNames() => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task A_hostile_description_is_refused_with_400_and_the_server_keeps_serving(string name)
    {
        var (describe, expected) = Cases[name];

        var problem = await AssertProblemAsync(await Server.PublishBytesAsync("hostile", HandmadeModule.Wasm(describe())), HttpStatusCode.BadRequest);

        Assert.Contains(expected, problem.Detail());
        await AssertProblemAsync(await Server.Http.GetAsync("/v1/databases/hostile/schema"), HttpStatusCode.NotFound);
        await AssertServerAnswersAsync();
    }

    [Fact]
    public async Task A_well_formed_scheduled_table_and_a_recursive_type_are_accepted_and_the_document_stays_valid()
    {
        var module = new HandmadeModule();
        var node = module.Type("Node", Struct(("v", I32), ("next", AlgebraicType.Option(AlgebraicType.Ref(0)))));
        module.Function("walk", Struct(("node", node)), node);

        (await Server.PublishBytesAsync("handmade", module.ToWasm())).EnsureSuccessStatusCode();
        (await Server.PublishBytesAsync("handmade-scheduled", HandmadeModule.Wasm(Scheduled([ScheduledId, ScheduledAtColumn, ("note", Text, 0)])))).EnsureSuccessStatusCode();

        await AssertServerAnswersAsync();
    }

    [Fact]
    public async Task A_chain_of_4000_named_types_is_accepted()
    {
        var module = new HandmadeModule();
        for (var i = 1; i < 4000; i++)
        {
            module.Type($"T{i}", AlgebraicType.Ref((uint)i));
        }
        module.Type("End", Struct(("v", I32)));
        module.Function("f", Struct(("a", AlgebraicType.Ref(0))), AlgebraicType.Ref(0));

        (await Server.PublishBytesAsync("chain", module.ToWasm())).EnsureSuccessStatusCode();

        await AssertServerAnswersAsync();
    }

    [Fact]
    public async Task Republishing_compares_the_structure_of_types_kept_in_jsonb_columns_not_their_names()
    {
        (await Server.PublishBytesAsync("stock", Stock("Item", AlgebraicType.Primitive(TypeKind.U8)))).EnsureSuccessStatusCode();

        var changed = await AssertProblemAsync(await Server.PublishBytesAsync("stock", Stock("Item", AlgebraicType.Primitive(TypeKind.U16))), HttpStatusCode.Conflict);

        Assert.Contains("where #0 = { name: String, qty: u16 }", changed.Detail());
        (await Server.PublishBytesAsync("stock", Stock("Thing", AlgebraicType.Primitive(TypeKind.U8)))).EnsureSuccessStatusCode();
    }

    [Fact]
    public async Task Scheduled_tables_whose_names_share_61_bytes_are_both_created()
    {
        var module = new HandmadeModule();
        foreach (var name in (string[])[new string('t', 61), new string('t', 61) + "_"])
        {
            var row = module.Type($"Row{name.Length}", Struct(("scheduled_id", U64), ("scheduled_at", ScheduleAt)));
            module.Function($"run{name.Length}", Struct(("row", row)), kind: FunctionKind.Reducer);
            module.Table(name, row, [("scheduled_id", PrimaryKey | AutoIncrement), ("scheduled_at", 0)], $"run{name.Length}");
        }

        (await Server.PublishBytesAsync("long-names", module.ToWasm())).EnsureSuccessStatusCode();
    }

    /// <summary>A table <c>stock</c> whose <c>items</c> column keeps a <c>Vec</c> of a named struct.</summary>
    private static byte[] Stock(string itemName, AlgebraicType quantity)
    {
        var module = new HandmadeModule();
        var item = module.Type(itemName, Struct(("name", Text), ("qty", quantity)));
        var row = module.Type("Stock", Struct(("id", I32), ("items", AlgebraicType.Array(item))));
        return module.Table("stock", row, [("id", PrimaryKey), ("items", 0)]).ToWasm();
    }

    /// <summary>A scheduled table <c>job</c> with these columns, naming <paramref name="target"/>, a function <c>run</c> taking <paramref name="parameters"/> (the row by default).</summary>
    private static byte[] Scheduled(
        (string Name, AlgebraicType Type, byte Flags)[] columns,
        Func<AlgebraicType, AlgebraicType>? parameters = null,
        FunctionKind kind = FunctionKind.Reducer,
        string target = "run",
        (uint Retries, long BackoffMicros)? retry = null)
    {
        var module = new HandmadeModule();
        var row = module.Type("Job", Struct([.. columns.Select(c => ((string?)c.Name, c.Type))]));
        module.Function("run", parameters?.Invoke(row) ?? Struct(("job", row)), kind: kind);
        return module.Table("job", row, [.. columns.Select(c => (c.Name, c.Flags))], target, retry: retry).Describe();
    }

    /// <summary>A typespace of these types, named T0, T1, …</summary>
    private static byte[] Types(params AlgebraicType[] types) =>
        Module(m => Enumerable.Range(0, types.Length).Aggregate(m, (module, i) => module.Name($"T{i}", (uint)i)), types);

    /// <summary>A table <c>t</c> of seven columns, with the indexes <paramref name="indexes"/> adds.</summary>
    private static byte[] WithIndexes(Func<HandmadeModule, HandmadeModule> indexes) =>
        Module(m => indexes(m.Table("t", Fields(7, i => $"c{i}"), [.. Enumerable.Range(0, 7).Select(i => ($"c{i}", (byte)0))])));

    private static byte[] Function(string name, AlgebraicType parameters) => Module(m => m.Function(name, parameters));

    private static byte[] Table(params (string Name, AlgebraicType Type, byte Flags)[] columns) =>
        Module(m => m.Table("t", Struct([.. columns.Select(c => ((string?)c.Name, c.Type))]), [.. columns.Select(c => (c.Name, c.Flags))]));

    /// <summary>Table <c>t</c> with a key and a column <c>a</c> of <paramref name="type"/> whose default is <paramref name="value"/>.</summary>
    private static byte[] Defaulted(AlgebraicType type, byte flags, byte[] value) =>
        Module(m => m.Table("t", Struct(("id", I32), ("a", type)), [("id", PrimaryKey), ("a", flags)], defaults: new Dictionary<string, byte[]> { ["a"] = value }));

    /// <summary>An empty module, no declared indexes, then the description's sixth section, <c>allowed_http_hosts!</c>, claiming <paramref name="count"/> hosts.</summary>
    private static byte[] WithHttpHosts(uint count, params string[] hosts)
    {
        var writer = new BsatnWriter();
        writer.WriteBytes(Module(m => m));
        writer.WriteU32(0);
        writer.WriteU32(count);
        foreach (var host in hosts)
        {
            writer.WriteString(host);
        }
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>A module with these (unnamed) types, shaped further by <paramref name="shape"/>.</summary>
    private static byte[] Module(Func<HandmadeModule, HandmadeModule> shape, params AlgebraicType[] types)
    {
        var module = new HandmadeModule();
        foreach (var type in types)
        {
            module.Type(null, type);
        }
        return shape(module).Describe();
    }

    private static AlgebraicType Fields(int count, Func<int, string> name) =>
        Struct([.. Enumerable.Range(0, count).Select(i => ((string?)name(i), I32))]);
}
