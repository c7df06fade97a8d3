using Procyon.Sats;

namespace Procyon.Storage.Tables;

/// <summary>
/// What a republish changes in an existing table without dropping its data, by SpacetimeDB's
/// rules for automatic migrations: columns added at the end of the row with a default, and
/// <c>#[index(btree)]</c> added to existing columns. (A table's access needs no migration: the
/// readers' grants follow every publish.) Anything else is a difference the publish is refused
/// for, named column by column.
/// </summary>
internal sealed class TableMigration
{
    /// <summary>What the refusal of any other change says.</summary>
    public const string Allowed = "a republish may add tables, add columns at the end of a table with #[default(value)], add #[index(btree)] to existing columns and make tables public or private; anything else needs ?clear=true, which drops the data";

    private const string UpdateSql = "UPDATE procyon.tables SET definition = @definition WHERE db = @db AND name = @name";

    private readonly TableSchema _table;
    private readonly IReadOnlyList<TableColumn> _added;
    private readonly IReadOnlyList<TableColumn> _indexed;

    private TableMigration(TableSchema table, IReadOnlyList<TableColumn> added, IReadOnlyList<TableColumn> indexed)
    {
        _table = table;
        _added = added;
        _indexed = indexed;
    }

    public string TableName => _table.Name;

    /// <summary>
    /// How <paramref name="table"/> migrates from its <paramref name="stored"/> definition: null when
    /// it cannot, after adding to <paramref name="differences"/> why.
    /// </summary>
    public static TableMigration? Plan(string stored, TableSchema table, Typespace typespace, List<string> differences)
    {
        stored = WithCron(stored, table.Definition(typespace));
        var old = StoredColumns(stored);
        var columns = table.Columns;
        var problems = new List<string>();
        if (old.Count <= columns.Count && old.Select(c => c.Name).SequenceEqual(columns.Take(old.Count).Select(c => c.Name), StringComparer.Ordinal)
            && table.Definition(typespace, columns.Take(old.Count).Select((c, i) => c with { Flags = old[i].Flags })) == stored)
        {
            // The same columns but for their flags, and maybe more at the end.
            var indexed = new List<TableColumn>();
            for (var i = 0; i < old.Count; i++)
            {
                if (columns[i].Flags == (old[i].Flags | ColumnFlags.Indexed))
                {
                    indexed.Add(columns[i]);
                }
                else if (columns[i].Flags != old[i].Flags)
                {
                    problems.Add($"column {columns[i].Name}'s flags change from {old[i].Flags} to {columns[i].Flags}");
                }
            }
            var added = columns.Skip(old.Count).ToList();
            problems.AddRange(added.Where(c => c.Default is null).Select(c => $"column {c.Name} is added without a #[default(value)]"));
            if (problems.Count == 0)
            {
                return new TableMigration(table, added, indexed.Concat(added).ToList());
            }
        }
        else
        {
            problems.AddRange(ColumnChanges(old, table, typespace));
        }
        differences.Add($"table {table.Name} changes from ({stored}) to ({table.Definition(typespace)}){(problems.Count == 0 ? "" : ": " + string.Join(", ", problems))}");
        return null;
    }

    /// <summary>
    /// Adds the columns, with their defaults filling the existing rows, and the indexes, and
    /// remembers the table's new definition; in the publish's transaction, under its lock timeout.
    /// </summary>
    public async Task ApplyAsync(DatabaseTransaction transaction, Typespace typespace, CancellationToken cancellationToken)
    {
        foreach (var column in _added)
        {
            // DDL takes no parameters: Postgres spells the value as a literal of the column's type.
            // A constant default is stored once (no rewrite of the rows) and stays, so that code
            // still running the old module (sleeping calls, other replicas until they reload)
            // inserts rows without the column; the module itself always gives every column.
            var literal = await transaction.LiteralAsync(column, cancellationToken);
            await transaction.ExecuteAsync(
                $"ALTER TABLE {_table.QualifiedName} ADD COLUMN {Sql.Quote(column.Name)} {column.Storage.SqlType}{(column.Storage.Nullable ? "" : " NOT NULL")} DEFAULT {literal}::{column.Storage.SqlType}",
                cancellationToken);
        }
        foreach (var index in _indexed.Select(_table.IndexSql).OfType<string>())
        {
            await transaction.ExecuteAsync(index, cancellationToken);
        }
        await transaction.ExecuteAsync(UpdateSql, cancellationToken, ("db", _table.Database), ("name", _table.Name), ("definition", _table.Definition(typespace)));
    }

    /// <summary>How <c>scheduled_at</c> read before <c>ScheduleAt</c> had <c>Cron</c>, and since.</summary>
    private const string ScheduleAtBeforeCron = "; scheduled_at: Interval(TimeDuration) | Time(Timestamp);";

    private const string ScheduleAtWithCron = "; scheduled_at: Interval(TimeDuration) | Time(Timestamp) | Cron(String);";

    /// <summary>
    /// A scheduled table stored before <c>ScheduleAt</c> gained <c>Cron</c>, republished with an SDK
    /// that has it, changes nothing in Postgres (the column is jsonb, and every value it holds is
    /// still a <c>ScheduleAt</c>): it compares as the new definition, and only the catalog's text moves on.
    /// </summary>
    private static string WithCron(string stored, string definition) =>
        definition.Contains(ScheduleAtWithCron, StringComparison.Ordinal) ? stored.Replace(ScheduleAtBeforeCron, ScheduleAtWithCron, StringComparison.Ordinal) : stored;

    /// <summary>A column of a stored definition: its name, flags and what follows its name (type and flags).</summary>
    private sealed record StoredColumn(string Name, ColumnFlags Flags, string Text);

    /// <summary>
    /// The columns of a definition <see cref="TableSchema.Definition(Typespace)"/> wrote: the parts
    /// before <c>scheduled(…)</c> or <c>where …</c>, each <c>name: type [Flags]</c> (types never
    /// hold <c>"; "</c> or brackets).
    /// </summary>
    private static List<StoredColumn> StoredColumns(string definition)
    {
        var columns = new List<StoredColumn>();
        foreach (var part in definition.Split("; "))
        {
            var colon = part.IndexOf(": ", StringComparison.Ordinal);
            if (colon <= 0 || !part[..colon].All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            {
                break;
            }
            var text = part[(colon + 2)..];
            var open = text.LastIndexOf(" [", StringComparison.Ordinal);
            var flags = open >= 0 && text.EndsWith(']') && Enum.TryParse<ColumnFlags>(text[(open + 2)..^1], out var parsed) ? parsed : ColumnFlags.None;
            columns.Add(new StoredColumn(part[..colon], flags, text));
        }
        return columns;
    }

    /// <summary>Each column removed, moved, changed or added where it may not be.</summary>
    private static IEnumerable<string> ColumnChanges(List<StoredColumn> old, TableSchema table, Typespace typespace)
    {
        var structure = new TypeStructure(typespace);
        var current = table.Columns.Select((c, i) => (Column: c, Position: i, Text: TableSchema.ColumnDefinition(structure, c))).ToDictionary(c => c.Column.Name, StringComparer.Ordinal);
        for (var i = 0; i < old.Count; i++)
        {
            if (!current.TryGetValue(old[i].Name, out var now))
            {
                yield return $"column {old[i].Name} would be removed";
            }
            else if (now.Position != i)
            {
                yield return $"column {old[i].Name} moves from position {i + 1} to {now.Position + 1}";
            }
            else if (now.Text != old[i].Text)
            {
                yield return $"column {old[i].Name} changes from {old[i].Text} to {now.Text}";
            }
        }
        var names = old.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var (column, position, _) in current.Values.Where(c => !names.Contains(c.Column.Name)))
        {
            yield return position < old.Count
                ? $"column {column.Name} is added between existing columns (only at the end)"
                : column.Default is null ? $"column {column.Name} is added without a #[default(value)]" : $"column {column.Name} is added";
        }
    }
}
