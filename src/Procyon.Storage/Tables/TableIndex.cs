using Procyon.Sats;

namespace Procyon.Storage.Tables;

/// <summary>
/// One B-tree index of a module table and the SQL its filters run: values for a prefix of its
/// columns and a range of the next, read from the module's BSATN (src/abi/README.md, "Index
/// bounds") into bind parameters, and compared as the index orders them so Postgres scans it.
/// </summary>
/// <param name="Name">The declared index's accessor; null for a <c>#[index(btree)]</c> column.</param>
public sealed class TableIndex(TableSchema table, string? name, IReadOnlyList<TableColumn> columns)
{
    // How each end of a range is bounded, as the module sends it.
    internal const byte BoundIncluded = 0;
    internal const byte BoundExcluded = 1;
    internal const byte BoundUnbounded = 2;

    public string? Name { get; } = name;

    public IReadOnlyList<TableColumn> Columns { get; } = columns;

    /// <summary>
    /// Creates the index, text columns in the "C" collation: bytes, Rust's order for <c>String</c>,
    /// whatever the database's locale (the filters compare them so too).
    /// </summary>
    public string CreateSql => $"CREATE INDEX ON {table.QualifiedName} USING btree ({string.Join(", ", Columns.Select(Compared))});";

    /// <summary>The SELECT a filter with <paramref name="bounds"/> runs, rows in the index's order, and its parameters.</summary>
    public (string Sql, List<(TableColumn Column, object Value)> Parameters) Select(ReadOnlySpan<byte> bounds)
    {
        var (where, parameters) = Condition(bounds);
        var order = string.Join(", ", Columns.Select(Compared));
        return ($"{table.SelectAll} WHERE {where} ORDER BY {order}", parameters);
    }

    /// <summary>The DELETE a <c>delete(bounds)</c> runs, and its parameters.</summary>
    public (string Sql, List<(TableColumn Column, object Value)> Parameters) Delete(ReadOnlySpan<byte> bounds)
    {
        var (where, parameters) = Condition(bounds);
        return ($"DELETE FROM {table.QualifiedName} WHERE {where}", parameters);
    }

    private (string Where, List<(TableColumn Column, object Value)> Parameters) Condition(ReadOnlySpan<byte> bounds)
    {
        var reader = new BsatnReader(bounds);
        var prefix = reader.ReadU32();
        if (prefix > Columns.Count)
        {
            throw new InvalidDataException($"{Shown} has {Columns.Count} columns; the filter gave {prefix} values");
        }
        var conditions = new List<string>();
        var parameters = new List<(TableColumn, object)>();
        void Compare(TableColumn column, string op, ref BsatnReader reader)
        {
            if (!column.Storage.IsRangeFilterable)
            {
                throw new InvalidDataException($"{Shown}: column {column.Name} ({column.Storage.SqlType}{(column.Storage.Nullable ? ", nullable" : "")}) cannot be filtered: Postgres does not order it as Rust does");
            }
            object value;
            try
            {
                value = column.Storage.ReadParameter(ref reader);
            }
            catch (OverflowException)
            {
                // A u64 beyond the bigint an #[auto_inc] column is stored as (read whole before
                // the cast failed): above every row, so only an upper end lets rows through.
                conditions.Add(op[0] == '<' ? "true" : "false");
                return;
            }
            parameters.Add((column, value));
            conditions.Add($"{Compared(column)} {op} ${parameters.Count}");
        }
        for (var i = 0; i < prefix; i++)
        {
            Compare(Columns[i], "=", ref reader);
        }
        foreach (var (included, excluded) in (ReadOnlySpan<(string, string)>)[(">=", ">"), ("<=", "<")])
        {
            var tag = reader.ReadU8();
            if (tag == BoundUnbounded)
            {
                continue;
            }
            if (tag > BoundUnbounded || prefix == Columns.Count)
            {
                throw new InvalidDataException(tag > BoundUnbounded ? $"unknown bound {tag}" : $"{Shown}: a range needs a column after the {prefix} values given");
            }
            Compare(Columns[(int)prefix], tag == BoundIncluded ? included : excluded, ref reader);
        }
        if (reader.Remaining != 0)
        {
            throw new InvalidDataException($"{reader.Remaining} bytes left over after the bounds of {Shown}");
        }
        return (conditions.Count == 0 ? "true" : string.Join(" AND ", conditions), parameters);
    }

    private string Shown => $"index {Name ?? Columns[0].Name} of table {table.Name}";

    /// <summary>A column as the index compares it: text in the "C" collation.</summary>
    private static string Compared(TableColumn column) => Sql.Quote(column.Name) + (column.Storage.IsText ? " COLLATE \"C\"" : "");
}
