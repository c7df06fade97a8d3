using System.Globalization;
using System.Text;
using Procyon.Runtime;
using Procyon.Sats;

namespace Procyon.Testing;

/// <summary>
/// A module description built by hand, byte for byte as <c>describe()</c> in
/// src/rust/procyon/src/rt.rs writes it and <c>ModuleDescription.Read</c> reads it, including
/// what the SDK never writes (missing or repeated names, cycles, wrong shapes); <see cref="ToWasm"/>
/// wraps it in the smallest module the host publishes.
/// </summary>
public sealed class HandmadeModule
{
    private readonly List<AlgebraicType> _types = [];
    private readonly List<(string Name, uint Index)> _names = [];
    private readonly List<(string Name, FunctionKind Kind, byte Flags, AlgebraicType Parameters, AlgebraicType Returns)> _functions = [];
    private readonly List<(string Name, AlgebraicType Row, IReadOnlyList<(string Name, byte Flags)> Columns, string? Scheduled, IReadOnlyDictionary<string, byte[]>? Defaults, bool IsPublic, (uint Retries, long BackoffMicros)? Retry)> _tables = [];
    private readonly List<(string Table, string Name, uint[] Columns)> _indexes = [];

    /// <summary>The ABI's <c>COLUMN_DEFAULT</c> flag: a default value follows the column's flags.</summary>
    private const byte ColumnDefault = 16;

    public static AlgebraicType I32 => AlgebraicType.Primitive(TypeKind.I32);

    public static AlgebraicType U64 => AlgebraicType.Primitive(TypeKind.U64);

    public static AlgebraicType Text => AlgebraicType.Primitive(TypeKind.String);

    /// <summary>A struct; a null name writes a field without one.</summary>
    public static AlgebraicType Struct(params (string? Name, AlgebraicType Type)[] fields) =>
        AlgebraicType.Product(fields.Select(f => new TypeElement(f.Name, f.Type)).ToList());

    /// <summary>An enum; a null name writes a variant without one.</summary>
    public static AlgebraicType Enum(params (string? Name, AlgebraicType Type)[] variants) =>
        AlgebraicType.Sum(variants.Select(v => new TypeElement(v.Name, v.Type)).ToList());

    /// <summary>ScheduleAt as src/rust/procyon/src/time.rs declares it.</summary>
    public static AlgebraicType ScheduleAt => Enum(
        ("Interval", Struct(("__time_duration_micros__", AlgebraicType.Primitive(TypeKind.I64)))),
        ("Time", Struct(("__timestamp_micros_since_unix_epoch__", AlgebraicType.Primitive(TypeKind.I64)))));

    /// <summary>Adds a type to the typespace, under <paramref name="name"/> unless it is null, and returns a reference to it.</summary>
    public AlgebraicType Type(string? name, AlgebraicType type)
    {
        var index = (uint)_types.Count;
        _types.Add(type);
        if (name is not null)
        {
            Name(name, index);
        }
        return AlgebraicType.Ref(index);
    }

    /// <summary>Adds a name for the type at <paramref name="index"/>, which need not exist.</summary>
    public HandmadeModule Name(string name, uint index)
    {
        _names.Add((name, index));
        return this;
    }

    /// <param name="flags">The function's flags byte (the ABI's <c>FUNCTION_*</c>).</param>
    public HandmadeModule Function(string name, AlgebraicType parameters, AlgebraicType? returns = null, FunctionKind kind = FunctionKind.Procedure, byte flags = 0)
    {
        _functions.Add((name, kind, flags, parameters, returns ?? AlgebraicType.Unit));
        return this;
    }

    /// <summary>A table; <paramref name="columns"/> are the column names and flags as the description lists them.</summary>
    /// <param name="defaults">Columns' <c>#[default(value)]</c> bytes (BSATN, whatever they hold), written after their flags with <c>COLUMN_DEFAULT</c>.</param>
    /// <param name="isPublic">Whether anyone reads it through the SQL endpoint (<c>#[table(public)]</c>).</param>
    /// <param name="retry">For a scheduled table: its retries and first backoff, as <c>scheduled(f, retries = n, backoff = …)</c> describes them.</param>
    public HandmadeModule Table(string name, AlgebraicType row, IReadOnlyList<(string Name, byte Flags)> columns, string? scheduled = null, IReadOnlyDictionary<string, byte[]>? defaults = null, bool isPublic = true, (uint Retries, long BackoffMicros)? retry = null)
    {
        _tables.Add((name, row, columns, scheduled, defaults, isPublic, retry));
        return this;
    }

    /// <summary>A declared index of table <paramref name="table"/> on the columns at <paramref name="columns"/>.</summary>
    public HandmadeModule Index(string table, string name, params uint[] columns)
    {
        _indexes.Add((table, name, columns));
        return this;
    }

    /// <summary>The description's bytes.</summary>
    public byte[] Describe()
    {
        var writer = new BsatnWriter();
        writer.WriteU32((uint)_types.Count);
        foreach (var type in _types)
        {
            Encode(type, writer);
        }
        writer.WriteU32((uint)_names.Count);
        foreach (var (name, index) in _names)
        {
            writer.WriteString(name);
            writer.WriteU32(index);
        }
        writer.WriteU32((uint)_functions.Count);
        foreach (var (name, kind, flags, parameters, returns) in _functions)
        {
            writer.WriteString(name);
            writer.WriteU8((byte)kind);
            writer.WriteU8(flags);
            Encode(parameters, writer);
            Encode(returns, writer);
        }
        writer.WriteU32((uint)_tables.Count);
        foreach (var (name, row, columns, scheduled, defaults, isPublic, retry) in _tables)
        {
            writer.WriteString(name);
            Encode(row, writer);
            writer.WriteBool(isPublic);
            writer.WriteU32((uint)columns.Count);
            foreach (var (column, flags) in columns)
            {
                writer.WriteString(column);
                if (defaults?.GetValueOrDefault(column) is { } value)
                {
                    writer.WriteU8((byte)(flags | ColumnDefault));
                    writer.WriteU32((uint)value.Length);
                    writer.WriteBytes(value);
                }
                else
                {
                    writer.WriteU8(flags);
                }
            }
            if (retry is { } policy)
            {
                writer.WriteU8(2);
                writer.WriteString(scheduled!);
                writer.WriteU32(policy.Retries);
                writer.WriteU64((ulong)policy.BackoffMicros);
            }
            else
            {
                WriteOptionalName(scheduled, writer);
            }
        }
        // Without declared indexes the description ends here, as an earlier SDK's did.
        if (_indexes.Count > 0)
        {
            writer.WriteU32((uint)_indexes.Count);
            foreach (var (table, name, columns) in _indexes)
            {
                writer.WriteString(table);
                writer.WriteString(name);
                writer.WriteU32((uint)columns.Length);
                foreach (var column in columns)
                {
                    writer.WriteU32(column);
                }
            }
        }
        return writer.WrittenSpan.ToArray();
    }

    /// <param name="memoryPages">The memory the module starts with, in 64 KiB pages, when more than its description needs.</param>
    public byte[] ToWasm(int memoryPages = 0) => Wasm(Describe(), memoryPages);

    /// <summary>
    /// The smallest module the host publishes: it imports <c>result_write</c>, exports memory, and its
    /// <c>__procyon_describe__</c> hands over <paramref name="description"/> from a data segment.
    /// Publishing adds the Asyncify exports.
    /// </summary>
    /// <param name="memoryPages">The memory the module starts with, in 64 KiB pages, when more than the description needs.</param>
    public static byte[] Wasm(byte[] description, int memoryPages = 0)
    {
        var data = new StringBuilder(description.Length * 3);
        foreach (var b in description)
        {
            data.Append('\\').Append(b.ToString("x2", CultureInfo.InvariantCulture));
        }
        return Wasmtime.Module.ConvertText($$"""
            (module
              (import "procyon" "result_write" (func $result_write (param i32 i32)))
              (memory (export "memory") {{Math.Max(description.Length / 65536 + 1, memoryPages)}})
              (data (i32.const 0) "{{data}}")
              (func (export "__procyon_describe__") (call $result_write (i32.const 0) (i32.const {{description.Length}})))
              (func (export "__procyon_call__") (param i32 i64 i32) (result i32) (i32.const 0))
              (func (export "__procyon_asyncify_data__") (result i32) (i32.const 0)))
            """);
    }

    private static void Encode(AlgebraicType type, BsatnWriter writer)
    {
        writer.WriteU8((byte)type.Kind);
        switch (type.Kind)
        {
            case TypeKind.Ref:
                writer.WriteU32(type.Reference);
                break;
            case TypeKind.Sum or TypeKind.Product:
                writer.WriteU32((uint)type.Elements.Count);
                foreach (var element in type.Elements)
                {
                    WriteOptionalName(element.Name, writer);
                    Encode(element.Type, writer);
                }
                break;
            case TypeKind.Array:
                Encode(type.Item!, writer);
                break;
        }
    }

    /// <summary>An <c>Option&lt;String&gt;</c>: tag 0 and the string, or tag 1.</summary>
    private static void WriteOptionalName(string? name, BsatnWriter writer)
    {
        if (name is null)
        {
            writer.WriteU8(1);
            return;
        }
        writer.WriteU8(0);
        writer.WriteString(name);
    }
}
