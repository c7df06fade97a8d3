using Procyon.Sats;

namespace Procyon.Storage.Tables;

[Flags]
public enum ColumnFlags : byte
{
    None = 0,
    PrimaryKey = 1,
    AutoIncrement = 2,
    Unique = 4,
    Indexed = 8,
}

/// <param name="Default">The column's <c>#[default(value)]</c> as its Npgsql value (<see cref="DBNull"/> for <c>None</c>); null without one.</param>
public sealed record TableColumn(string Name, AlgebraicType Type, ColumnFlags Flags, ColumnType Storage, object? Default = null);

/// <summary>
/// One module table as Postgres holds it, with its SQL prepared once: every identifier comes
/// from the module's description and goes through <see cref="Sql.Quote"/>.
/// </summary>
public sealed class TableSchema
{
    /// <param name="declaredIndexes">The table's <c>index(accessor = x, btree(columns = [..]))</c>: names and column positions.</param>
    public TableSchema(
        string database,
        string name,
        bool isPublic,
        IReadOnlyList<TableColumn> columns,
        string? scheduledFunction = null,
        IReadOnlyList<(string Name, IReadOnlyList<int> Columns)>? declaredIndexes = null)
    {
        ScheduledFunction = scheduledFunction;
        Database = database;
        Name = name;
        IsPublic = isPublic;
        Columns = columns;
        QualifiedName = $"{Sql.Quote(Sql.SchemaOf(database))}.{Sql.Quote(name)}";
        var all = string.Join(", ", columns.Select(c => Sql.Quote(c.Name)));
        SelectAll = $"SELECT {all} FROM {QualifiedName}";
        var keys = columns.Where(c => c.Flags.HasFlag(ColumnFlags.PrimaryKey)).ToList();
        RowKey = keys.Count > 0 ? keys : columns;
        Count = $"SELECT count(*) FROM {QualifiedName}";
        ReturningAll = $" RETURNING {all}";
        var indexed = columns.Where(c => c.Flags.HasFlag(ColumnFlags.Indexed) && !c.Flags.HasFlag(ColumnFlags.PrimaryKey) && !c.Flags.HasFlag(ColumnFlags.Unique));
        Indexes = indexed.Select(c => new TableIndex(this, null, [c]))
            .Concat((declaredIndexes ?? []).Select(i => new TableIndex(this, i.Name, i.Columns.Select(c => columns[c]).ToList())))
            .ToList();
    }

    /// <summary>
    /// The B-tree indexes the module filters by, numbered as the SDK numbers them: each
    /// <c>#[index(btree)]</c> column that is not unique, in column order, then the table's declared ones.
    /// </summary>
    public IReadOnlyList<TableIndex> Indexes { get; }

    public string Database { get; }

    /// <summary>For a scheduled table, the function its rows name; the table gets a due-time column the host maintains.</summary>
    public string? ScheduledFunction { get; }

    public string Name { get; }

    public bool IsPublic { get; }

    public IReadOnlyList<TableColumn> Columns { get; }

    public string QualifiedName { get; }

    public string SelectAll { get; }

    public string Count { get; }

    public string ReturningAll { get; }

    /// <summary>The columns that identify a row for <c>delete(row)</c>: the primary key, or all of them.</summary>
    public IReadOnlyList<TableColumn> RowKey { get; }

    /// <summary>
    /// What the catalog remembers to compare with the next publish: column names, types and flags,
    /// with the named types they reach spelled out by structure (the JSON of jsonb columns depends
    /// on it, not on their names): <c>items: Vec&lt;#0&gt;; where #0 = { name: String, qty: u8 }</c>.
    /// Tables that reach no named types read as they always did.
    /// </summary>
    /// <remarks>A column's default is not part of it: it only matters to the publish that adds the column.</remarks>
    public string Definition(Typespace typespace) => Definition(typespace, Columns);

    /// <summary>The definition the table would have with <paramref name="columns"/> for its own: what a migration compares with the stored one.</summary>
    internal string Definition(Typespace typespace, IEnumerable<TableColumn> columns)
    {
        var structure = new TypeStructure(typespace);
        var described = string.Join("; ", columns.Select(c => $"{c.Name}: {ColumnDefinition(structure, c)}"));
        var where = structure.Where();
        var declared = Indexes.Where(i => i.Name is not null).Select(i => $"; index {i.Name}({string.Join(", ", i.Columns.Select(c => c.Name))})");
        return described + string.Concat(declared) + (ScheduledFunction is null ? "" : $"; scheduled({ScheduledFunction})") + (where.Length == 0 ? "" : $"; {where}");
    }

    /// <summary>A column's type and flags in the definition: <c>String [Indexed]</c>.</summary>
    internal static string ColumnDefinition(TypeStructure structure, TableColumn column) =>
        $"{structure.Describe(column.Type)}{(column.Flags == ColumnFlags.None ? "" : $" [{column.Flags}]")}";

    /// <summary>The index an <c>#[index(btree)]</c> column gets; null when its primary key or unique constraint has one already.</summary>
    internal string? IndexSql(TableColumn column) => Indexes.FirstOrDefault(i => i.Name is null && i.Columns[0] == column)?.CreateSql;

    /// <summary>
    /// The function that keeps the due time of a scheduled row from its <c>scheduled_at</c> (JSON:
    /// {"Time": RFC 3339 or µs}, {"Interval": µs} or {"Cron": expression}) on insert and when it
    /// changes, and then wakes the schedulers; <c>@schema@</c> stands for the quoted schema. A
    /// cron row is due at <see cref="ScheduleStore.Unarmed"/>: the scheduler, which parses cron
    /// expressions, leases it at once and moves it to its first occurrence without running it.
    /// The schedulers' own updates (leases, next times) only push due times later: no wake-up.
    /// One function serves every scheduled table of the schema, so no name is derived from a
    /// table's (which Postgres would cut at 63 bytes, and two could meet).
    /// </summary>
    private const string DueFunctionTemplate = $"""
        CREATE OR REPLACE FUNCTION @schema@."{Sql.DueFunction}"() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN
            IF TG_OP = 'INSERT' OR NEW.scheduled_at IS DISTINCT FROM OLD.scheduled_at THEN
                NEW."{Sql.AttemptsColumn}" := 0;
                NEW."{Sql.DueColumn}" := CASE
                    WHEN NEW.scheduled_at ? 'Time' AND jsonb_typeof(NEW.scheduled_at->'Time') = 'string' THEN (NEW.scheduled_at->>'Time')::timestamptz
                    WHEN NEW.scheduled_at ? 'Time' THEN to_timestamp((NEW.scheduled_at->>'Time')::numeric / 1000000)
                    WHEN NEW.scheduled_at ? 'Cron' THEN 'epoch'::timestamptz
                    ELSE now() + ((NEW.scheduled_at->>'Interval')::numeric / 1000000) * interval '1 second'
                END;
                PERFORM pg_notify('{Sql.ScheduleChannel}', TG_TABLE_SCHEMA);
            END IF;
            RETURN NEW;
        END
        $body$;
        """;

    /// <summary>
    /// Part of the catalog's setup, which runs when the catalog's version changes: gives scheduled
    /// tables of earlier versions the attempts column, and brings the due function of every schema
    /// that has one to <see cref="DueFunctionTemplate"/>, so tables created by an earlier version
    /// take the schedules and retries this one knows.
    /// </summary>
    internal const string UpgradeDueFunctionsSql = $"""
        DO $upgrade$
        DECLARE target text;
        BEGIN
            FOR target IN SELECT format('%I.%I', n.nspname, c.relname) FROM pg_attribute AS a
                JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
                WHERE a.attname = '{Sql.DueColumn}' AND c.relkind = 'r' AND NOT a.attisdropped
                  AND NOT EXISTS (SELECT FROM pg_attribute AS b WHERE b.attrelid = c.oid AND b.attname = '{Sql.AttemptsColumn}' AND NOT b.attisdropped) LOOP
                EXECUTE 'ALTER TABLE ' || target || ' ADD COLUMN "{Sql.AttemptsColumn}" integer NOT NULL DEFAULT 0';
            END LOOP;
            FOR target IN SELECT quote_ident(n.nspname) FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE p.proname = '{Sql.DueFunction}' LOOP
                EXECUTE replace($template${DueFunctionTemplate}$template$, '@schema@', target);
            END LOOP;
        END
        $upgrade$;
        """;

    /// <summary>The due function of the table's schema (see <see cref="DueFunctionTemplate"/>), its trigger and the due index.</summary>
    private string DueTriggerSql()
    {
        var function = $"{Sql.Quote(Sql.SchemaOf(Database))}.{Sql.Quote(Sql.DueFunction)}";
        return $"""
            {DueFunctionTemplate.Replace("@schema@", Sql.Quote(Sql.SchemaOf(Database)), StringComparison.Ordinal)}
            CREATE TRIGGER procyon_due BEFORE INSERT OR UPDATE ON {QualifiedName} FOR EACH ROW EXECUTE FUNCTION {function}();
            CREATE INDEX ON {QualifiedName} ({Sql.Quote(Sql.DueColumn)});
            """;
    }

    public string CreateSql()
    {
        var columns = Columns.Select(c => $"{Sql.Quote(c.Name)} {c.Storage.SqlType}{(c.Storage.Nullable ? "" : " NOT NULL")}{(c.Flags.HasFlag(ColumnFlags.Unique) ? " UNIQUE" : "")}");
        var primaryKey = Columns.Where(c => c.Flags.HasFlag(ColumnFlags.PrimaryKey)).Select(c => Sql.Quote(c.Name)).ToList();
        var constraints = primaryKey.Count > 0 ? [$"PRIMARY KEY ({string.Join(", ", primaryKey)})"] : Array.Empty<string>();
        var due = ScheduledFunction is null ? [] : new[] { $"{Sql.Quote(Sql.DueColumn)} timestamptz NOT NULL", $"{Sql.Quote(Sql.AttemptsColumn)} integer NOT NULL DEFAULT 0" };
        var create = $"CREATE TABLE {QualifiedName} ({string.Join(", ", columns.Concat(due).Concat(constraints))});";
        if (ScheduledFunction is not null)
        {
            create += "\n" + DueTriggerSql();
        }
        var indexes = Indexes.Select(i => i.CreateSql);
        return string.Join("\n", indexes.Prepend(create));
    }
}
