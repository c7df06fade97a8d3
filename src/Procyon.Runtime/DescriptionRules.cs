using Procyon.Sats;
using Procyon.Storage.Tables;

namespace Procyon.Runtime;

/// <summary>
/// What the host requires of a description beyond its format, instead of trusting the SDK's
/// macros: names that are safe as JSON keys, URL segments and Postgres identifiers, shapes within
/// <see cref="ModuleLimits"/>, and tables the host can store and schedule. Throws
/// <see cref="InvalidDataException"/> naming the first problem (the publisher gets it as a 400).
/// </summary>
internal static class DescriptionRules
{
    /// <summary>Columns the host adds to tables start with this (the due time of scheduled rows).</summary>
    private const string ReservedColumnPrefix = "__procyon";

    private const ColumnFlags KnownFlags = ColumnFlags.PrimaryKey | ColumnFlags.AutoIncrement | ColumnFlags.Unique | ColumnFlags.Indexed;

    /// <summary>Postgres refuses columns with these names.</summary>
    private static readonly HashSet<string> SystemColumns = new(["tableoid", "xmin", "cmin", "xmax", "cmax", "ctid"], StringComparer.Ordinal);

    public static void Validate(Typespace typespace, IReadOnlyList<FunctionDescription> functions, IReadOnlyList<TableDescription> tables, IReadOnlyList<string>? httpHosts = null)
    {
        const string Module = "the module";
        AtMost(typespace.Types.Count, ModuleLimits.MaxTypes, Module, "named types");
        AtMost(functions.Count, ModuleLimits.MaxFunctions, Module, "functions");
        AtMost(tables.Count, ModuleLimits.MaxTables, Module, "tables");
        if (typespace.Names.Count != typespace.Types.Count || typespace.Names.Keys.Any(index => index >= typespace.Types.Count))
        {
            throw new InvalidDataException($"each of the {typespace.Types.Count} types needs one name; the description names {typespace.Names.Count}");
        }
        Names(typespace.Names.OrderBy(n => n.Key).Select(n => n.Value), Module, "type");
        foreach (var (index, name) in typespace.Names)
        {
            Shape(typespace.Types[(int)index], typespace, $"type {name}");
        }
        Names(functions.Select(f => f.Name), Module, "function");
        foreach (var function in functions)
        {
            var context = $"function {function.Name}";
            Elements(function.Parameters, ModuleLimits.MaxParameters, typespace, context, "parameter");
            Shape(function.ReturnType, typespace, $"{context} (its return type)");
        }
        Names(tables.Select(t => t.Name), Module, "table");
        foreach (var table in tables)
        {
            Table(table, typespace, functions);
        }
        foreach (var lifecycle in functions.Where(f => f.Lifecycle is not null).GroupBy(f => f.Lifecycle!.Value.Name))
        {
            if (lifecycle.Count() > 1)
            {
                throw new InvalidDataException($"a module may have one #[reducer({lifecycle.Key})], not {string.Join(" and ", lifecycle.Select(f => f.Name))}");
            }
            if (lifecycle.Single().Parameters.Elements.Count > 0)
            {
                throw new InvalidDataException($"the #[reducer({lifecycle.Key})] {lifecycle.Single().Name} takes no parameters besides its context");
            }
        }
        if (httpHosts is not null)
        {
            AtMost(httpHosts.Count, ModuleLimits.MaxHttpHosts, Module, "hosts in allowed_http_hosts!");
            if (httpHosts.FirstOrDefault(host => !Outbound.HostPattern.IsPattern(host)) is { } bad)
            {
                throw new InvalidDataException($"allowed_http_hosts! lists {Shown(bad)}, which is not a host name, *. and a domain, or an IP address");
            }
        }
    }

    private static void Table(TableDescription table, Typespace typespace, IReadOnlyList<FunctionDescription> functions)
    {
        var context = $"table {table.Name}";
        Shape(table.RowType, typespace, context);
        var row = typespace.Resolve(table.RowType);
        if (row.Kind != TypeKind.Product || row.Elements.Count == 0)
        {
            throw new InvalidDataException($"{context} needs a struct with at least one field as its row");
        }
        AtMost(row.Elements.Count, ModuleLimits.MaxColumns, context, "columns");
        if (table.Columns.Count != row.Elements.Count)
        {
            throw new InvalidDataException($"{context} describes {table.Columns.Count} columns; its row has {row.Elements.Count} fields");
        }
        for (var i = 0; i < row.Elements.Count; i++)
        {
            var (name, flags) = (table.Columns[i].Name, (ColumnFlags)table.Columns[i].Flags);
            if (name != row.Elements[i].Name)
            {
                throw new InvalidDataException($"{context} describes column {i} as {Shown(name)}; its row's field {i} is {row.Elements[i].Name}");
            }
            if (name.StartsWith(ReservedColumnPrefix, StringComparison.Ordinal) || SystemColumns.Contains(name))
            {
                throw new InvalidDataException($"{context}: column name {name} is reserved (names starting with {ReservedColumnPrefix}, and Postgres's {string.Join(", ", SystemColumns)})");
            }
            if ((flags & ~KnownFlags) != 0)
            {
                throw new InvalidDataException($"{context}: column {name} has unknown flags {(byte)flags:x2}");
            }
            if (table.Columns[i].Default is { } value)
            {
                Default(value, flags, row.Elements[i].Type, typespace, $"{context}: the #[default] of column {name}");
            }
        }
        AtMost(table.Columns.Count(c => ((ColumnFlags)c.Flags & (ColumnFlags.PrimaryKey | ColumnFlags.Unique | ColumnFlags.Indexed)) != 0), ModuleLimits.MaxIndexedColumns, context, "primary-key, unique and indexed columns");
        if (table.ScheduledFunction is not null)
        {
            Scheduled(table, row, typespace, functions);
        }
        if (table.Retry is { } retry && (retry.Retries is 0 or > RetryPolicy.MaxRetries || retry.Backoff < RetryPolicy.MinBackoff || retry.Backoff > RetryPolicy.MaxDelay))
        {
            throw new InvalidDataException($"{context}: retries must be 1 to {RetryPolicy.MaxRetries} and backoff {RetryPolicy.MinBackoff.TotalMilliseconds} ms to {RetryPolicy.MaxDelay.TotalDays} day, not {retry.Retries} and {retry.Backoff}");
        }
        Names(table.Indexes.Select(i => i.Name), context, "index");
        foreach (var (name, columns) in table.Indexes)
        {
            if (columns.Count is 0 or > ModuleLimits.MaxIndexColumns)
            {
                throw new InvalidDataException($"{context}: index {name} has {columns.Count} columns; an index has 1 to {ModuleLimits.MaxIndexColumns}");
            }
            if (columns.Any(c => c >= table.Columns.Count))
            {
                throw new InvalidDataException($"{context}: index {name} names column {columns.Max()}; the table has {table.Columns.Count}");
            }
            if (columns.Distinct().Count() != columns.Count)
            {
                throw new InvalidDataException($"{context}: index {name} names a column more than once");
            }
        }
    }

    /// <summary>The shape the scheduler relies on: <c>#[primary_key] #[auto_inc] scheduled_id: u64</c>, <c>scheduled_at: ScheduleAt</c>, and a target that takes the row.</summary>
    private static void Scheduled(TableDescription table, AlgebraicType row, Typespace typespace, IReadOnlyList<FunctionDescription> functions)
    {
        var context = $"scheduled table {table.Name}";
        var id = row.IndexOf("scheduled_id");
        const ColumnFlags IdFlags = ColumnFlags.PrimaryKey | ColumnFlags.AutoIncrement;
        if (id < 0 || typespace.Resolve(row.Elements[id].Type).Kind != TypeKind.U64 || ((ColumnFlags)table.Columns[id].Flags & IdFlags) != IdFlags)
        {
            throw new InvalidDataException($"{context} needs the column #[primary_key] #[auto_inc] scheduled_id: u64");
        }
        // The scheduler tells rows apart by scheduled_id alone: a wider key would let two rows share one.
        if (table.Columns.Where((column, i) => i != id && ((ColumnFlags)column.Flags).HasFlag(ColumnFlags.PrimaryKey)).Select(c => c.Name).FirstOrDefault() is { } other)
        {
            throw new InvalidDataException($"{context}: scheduled_id must be its only #[primary_key] column, not {other} too");
        }
        var at = row.IndexOf("scheduled_at");
        if (at < 0 || !IsScheduleAt(typespace.Resolve(row.Elements[at].Type), typespace))
        {
            throw new InvalidDataException($"{context} needs the column scheduled_at: ScheduleAt (Interval(TimeDuration) | Time(Timestamp) | Cron(String))");
        }
        var target = functions.FirstOrDefault(f => f.Name == table.ScheduledFunction && f.Lifecycle is null)
            ?? throw new InvalidDataException($"{context} names {Shown(table.ScheduledFunction!)}, which is not a reducer or procedure of the module");
        if (target.Parameters.Elements is not [var parameter] || !ReferenceEquals(typespace.Resolve(parameter.Type), row))
        {
            throw new InvalidDataException($"{context} names {target.Name}, which must take exactly one parameter: the table's row");
        }
    }

    /// <summary>
    /// A value of the column's type, on a column that may hold one value in every row: a republish
    /// adding the column fills the existing rows with it.
    /// </summary>
    private static void Default(byte[] value, ColumnFlags flags, AlgebraicType type, Typespace typespace, string context)
    {
        if ((flags & (ColumnFlags.PrimaryKey | ColumnFlags.Unique | ColumnFlags.AutoIncrement)) != 0)
        {
            throw new InvalidDataException($"{context}: a column with a default cannot be #[primary_key], #[unique] or #[auto_inc] (the existing rows would all get the one value)");
        }
        try
        {
            BsatnToJson.Convert(value, type, typespace);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{context} is not a value of its type {typespace.Describe(type)}: {e.Message}", e);
        }
    }

    /// <summary>As src/rust/procyon/src/time.rs defines it; the due-time trigger reads its JSON.</summary>
    /// <remarks>Modules built before <c>Cron</c> existed have the first two variants only.</remarks>
    private static bool IsScheduleAt(AlgebraicType type, Typespace typespace) =>
        type is { Kind: TypeKind.Sum, Elements: [{ Name: "Interval" } interval, { Name: "Time" } time, ..] variants }
        && typespace.Resolve(interval.Type).Special == SpecialType.TimeDuration
        && typespace.Resolve(time.Type).Special == SpecialType.Timestamp
        && (variants.Count == 2 || (variants.Count == 3 && variants[2].Name == "Cron" && typespace.Resolve(variants[2].Type).Kind == TypeKind.String));

    /// <summary>
    /// References within the typespace, and structs and enums with named elements within their
    /// caps. Recurses only as deep as the type itself nests, which the type reader bounds.
    /// </summary>
    private static void Shape(AlgebraicType type, Typespace typespace, string context)
    {
        switch (type.Kind)
        {
            case TypeKind.Ref:
                typespace.Resolve(type);
                break;
            case TypeKind.Array:
                Shape(type.Item!, typespace, context);
                break;
            case TypeKind.Product:
                Elements(type, ModuleLimits.MaxFields, typespace, context, "field");
                break;
            case TypeKind.Sum when type.Elements.Count == 0:
                throw new InvalidDataException($"{context}: an enum needs at least one variant");
            case TypeKind.Sum:
                Elements(type, ModuleLimits.MaxVariants, typespace, context, "variant");
                break;
        }
    }

    private static void Elements(AlgebraicType type, int limit, Typespace typespace, string context, string noun)
    {
        AtMost(type.Elements.Count, limit, context, noun switch
        {
            "field" => "fields in one struct",
            "variant" => "variants in one enum",
            _ => noun + "s",
        });
        Names(type.Elements.Select(e => e.Name), context, noun);
        foreach (var element in type.Elements)
        {
            Shape(element.Type, typespace, context);
        }
    }

    /// <summary>Every name present, an identifier, and distinct.</summary>
    private static void Names(IEnumerable<string?> names, string context, string noun)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            if (name is null)
            {
                throw new InvalidDataException($"{context}: a {noun} has no name");
            }
            if (!ModuleLimits.IsName(name))
            {
                throw new InvalidDataException(
                    $"{context}: {noun} name {Shown(name)} is not an identifier (ASCII letters, digits and _, not starting with a digit, 1 to {ModuleLimits.MaxNameBytes} bytes)");
            }
            if (!seen.Add(name))
            {
                throw new InvalidDataException($"{context}: {noun} {name} is defined more than once");
            }
        }
    }

    private static void AtMost(int count, int limit, string context, string what)
    {
        if (count > limit)
        {
            throw new InvalidDataException($"{context} has {count} {what}; the limit is {limit}");
        }
    }

    /// <summary>A name that failed a rule, quoted and cut short: it may be anything.</summary>
    private static string Shown(string name) =>
        System.Text.Json.JsonSerializer.Serialize(name.Length <= 64 ? name : name[..61] + "...");
}
