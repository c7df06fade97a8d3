using System.Data;
using Npgsql;
using Procyon.Sats;

namespace Procyon.Storage.Tables;

/// <summary>A unique or primary key value already exists; the module may handle it.</summary>
public sealed class UniqueViolationException(string message, Exception inner) : Exception(message, inner);

/// <summary>Postgres could not serialize the transaction (or broke a deadlock): run it again.</summary>
public sealed class SerializationFailureException(Exception inner) : Exception("the transaction could not be serialized with concurrent ones", inner);

/// <summary>
/// One serializable Postgres transaction and the table operations a module runs in it. Rows and
/// keys arrive and leave as BSATN in the module's types.
/// </summary>
public sealed class DatabaseTransaction : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private readonly NpgsqlTransaction _transaction;
    private readonly Action _onDispose;

    /// <summary>
    /// <c>SET LOCAL</c> statements not sent yet: they go with the transaction's first statement (Npgsql
    /// defers the BEGIN to it too), so a reducer's timeouts cost no round trip of their own.
    /// </summary>
    private string[]? _prelude;

    /// <summary>The bytes of rows a cursor's chunk aims at: bounded, whatever the table's size.</summary>
    internal const int ChunkBytes = 64 * 1024;

    /// <summary>The most rows a chunk holds, however small they are; the first chunk holds <see cref="FirstChunkRows"/>.</summary>
    internal const int MaxChunkRows = 1024;

    private const int FirstChunkRows = 32;

    /// <summary>Open cursors (iterators) one transaction may hold; each keeps a portal in Postgres.</summary>
    internal const int MaxOpenCursors = 64;

    /// <summary>Cursor ids are unique across transactions, so an iterator kept past its transaction cannot read another's.</summary>
    private static int s_lastCursor;

    private readonly Dictionary<int, Cursor> _cursors = [];

    /// <summary>The cursors open when <see cref="SaveAsync"/> marked its point: rolling back to it closes the others.</summary>
    private HashSet<int> _cursorsAtSave = [];

    /// <summary><c>CLOSE</c> statements not sent yet: they go with the transaction's next statement.</summary>
    private readonly List<string> _closing = [];

    private DatabaseTransaction(NpgsqlConnection connection, NpgsqlTransaction transaction, Action onDispose)
    {
        _connection = connection;
        _transaction = transaction;
        _onDispose = onDispose;
    }

    /// <summary>
    /// A serializable transaction for a call: a reducer, a procedure's <c>with_tx</c> or a batch
    /// of scheduled rows. Postgres itself cancels a statement longer than <paramref name="statementTimeout"/>
    /// and ends the session when it idles in the transaction longer than <paramref name="idleTimeout"/>.
    /// </summary>
    /// <param name="onDispose">Runs once the connection is back in the pool.</param>
    public static async Task<DatabaseTransaction> BeginAsync(NpgsqlDataSource dataSource, Action onDispose, TimeSpan statementTimeout, TimeSpan idleTimeout, CancellationToken cancellationToken)
    {
        var transaction = await BeginAsync(dataSource, IsolationLevel.Serializable, onDispose, cancellationToken);
        // LOCAL, so the pooled session keeps its defaults; sent with the first statement.
        transaction._prelude =
        [
            $"SET LOCAL statement_timeout = {(long)statementTimeout.TotalMilliseconds}",
            $"SET LOCAL idle_in_transaction_session_timeout = {(long)idleTimeout.TotalMilliseconds}",
        ];
        return transaction;
    }

    /// <summary>
    /// The transaction of a publish or delete: the catalog row, the schema's DDL and the init
    /// reducer. Read committed, so that waiting on another publisher's row lock ends in seeing
    /// its outcome rather than in a serialization failure.
    /// </summary>
    public static Task<DatabaseTransaction> BeginCatalogAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken) =>
        BeginAsync(dataSource, IsolationLevel.ReadCommitted, () => { }, cancellationToken);

    private static async Task<DatabaseTransaction> BeginAsync(NpgsqlDataSource dataSource, IsolationLevel isolation, Action onDispose, CancellationToken cancellationToken)
    {
        var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        try
        {
            return new DatabaseTransaction(connection, await connection.BeginTransactionAsync(isolation, cancellationToken), onDispose);
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public Task CommitAsync(CancellationToken cancellationToken) => Translate(() => _transaction.CommitAsync(cancellationToken));

    public Task RollbackAsync(CancellationToken cancellationToken) => _transaction.RollbackAsync(cancellationToken);

    /// <summary>Marks a point to undo back to while keeping what came before (a claimed row's lock, the timeouts).</summary>
    public Task SaveAsync(CancellationToken cancellationToken)
    {
        _cursorsAtSave = [.. _cursors.Keys];
        return SavepointAsync("run", cancellationToken);
    }

    /// <summary>Undoes what followed <see cref="SaveAsync"/>; Postgres closes the cursors opened since, and so does this.</summary>
    public Task RollbackToSavedAsync(CancellationToken cancellationToken)
    {
        foreach (var id in _cursors.Keys.Where(id => !_cursorsAtSave.Contains(id)).ToList())
        {
            _cursors.Remove(id);
        }
        // A CLOSE not sent yet may name a cursor Postgres just closed: the rest close with the transaction.
        _closing.Clear();
        return _transaction.RollbackAsync("run", cancellationToken);
    }

    public async Task<byte[]> InsertAsync(TableSchema table, ReadOnlyMemory<byte> row, CancellationToken cancellationToken)
    {
        var values = Values(table.Columns, row.Span);
        var included = table.Columns.Select((c, i) => (Column: c, Value: values[i]))
            .Where(p => !(p.Column.Flags.HasFlag(ColumnFlags.AutoIncrement) && Convert.ToInt64(p.Value, System.Globalization.CultureInfo.InvariantCulture) == 0))
            .ToList();
        var insert = included.Count == 0
            ? $"INSERT INTO {table.QualifiedName} DEFAULT VALUES"
            : $"INSERT INTO {table.QualifiedName} ({string.Join(", ", included.Select(p => Sql.Quote(p.Column.Name)))}) VALUES ({string.Join(", ", included.Select((_, i) => $"${i + 1}"))})";
        var parameters = included.Select(p => (p.Column, p.Value)).ToList();
        // A failed statement would abort the whole transaction, and a module that handles the
        // violation may go on writing: skip the conflict, and only then fail on purpose.
        if (await SingleRowAsync(table, Command($"{insert} ON CONFLICT DO NOTHING{table.ReturningAll}", parameters), cancellationToken) is { } inserted)
        {
            return inserted;
        }
        return await WithSavepointAsync(
            () => SingleRowAsync(table, Command(insert + table.ReturningAll, parameters), cancellationToken),
            cancellationToken) ?? throw new InvalidOperationException("INSERT returned no row");
    }

    /// <summary>
    /// Runs <paramref name="operation"/> behind a savepoint, so that a unique violation (with
    /// Postgres's own message naming the key) undoes that statement alone and the transaction goes on.
    /// </summary>
    private async Task<T> WithSavepointAsync<T>(Func<Task<T>> operation, CancellationToken cancellationToken)
    {
        await SavepointAsync("statement", cancellationToken);
        try
        {
            var result = await operation();
            await _transaction.ReleaseAsync("statement", cancellationToken);
            return result;
        }
        catch (UniqueViolationException)
        {
            await _transaction.RollbackAsync("statement", cancellationToken);
            throw;
        }
    }

    /// <summary>
    /// Every row of the table at once, as a <c>u32</c> count and the rows: the <c>table_scan</c>
    /// of modules built before <c>iter()</c> streamed (they still run); the SDK now uses cursors.
    /// </summary>
    public async Task<byte[]> ScanAsync(TableSchema table, CancellationToken cancellationToken)
    {
        await using var command = Command(table.SelectAll, []);
        var rows = new BsatnWriter();
        var count = 0;
        rows.WriteU32(0);
        await Translate(async () =>
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                WriteRow(table, reader, rows);
                count++;
            }
        });
        var bytes = rows.WrittenSpan.ToArray();
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 4), (uint)count);
        return bytes;
    }

    /// <summary>
    /// Opens a cursor over the whole table (no <paramref name="index"/>) or the index's rows
    /// within <paramref name="bounds"/>, and reads its first chunk (see <see cref="NextAsync"/>).
    /// </summary>
    public async Task<byte[]> OpenCursorAsync(TableSchema table, TableIndex? index, ReadOnlyMemory<byte> bounds, CancellationToken cancellationToken)
    {
        if (_cursors.Count >= MaxOpenCursors)
        {
            throw new InvalidOperationException($"more than {MaxOpenCursors} table iterators are open at once in one transaction; drop those done with");
        }
        var (select, parameters) = index is null ? (table.SelectAll, []) : index.Select(bounds.Span);
        int id;
        do
        {
            id = Interlocked.Increment(ref s_lastCursor) & int.MaxValue;
        }
        while (id == 0);
        var cursor = new Cursor(table, id);
        var command = Command($"DECLARE {cursor.Name} NO SCROLL CURSOR FOR {select}", parameters);
        _cursors[cursor.Id] = cursor;
        return await FetchAsync(cursor, command, cancellationToken);
    }

    /// <summary>
    /// The cursor's next chunk: its id (0 when this chunk is its last, and it is closed), a
    /// <c>u32</c> count and that many rows. A chunk holds about <see cref="ChunkBytes"/>: its
    /// row count follows the size of the rows before it.
    /// </summary>
    public Task<byte[]> NextAsync(int cursorId, CancellationToken cancellationToken)
    {
        var cursor = _cursors.GetValueOrDefault(cursorId)
            ?? throw new InvalidOperationException($"no table iterator {cursorId} is open in this transaction (it ended, was dropped, or belongs to another transaction)");
        return FetchAsync(cursor, Batch(), cancellationToken);
    }

    /// <summary>Closes a cursor the module stopped reading, with the transaction's next statement; ids not open are ignored.</summary>
    public void CloseCursor(int cursorId)
    {
        if (_cursors.Remove(cursorId, out var cursor))
        {
            _closing.Add($"CLOSE {cursor.Name}");
        }
    }

    /// <summary>The table an open cursor reads; null when it is not open.</summary>
    public TableSchema? CursorTable(int cursorId) => _cursors.GetValueOrDefault(cursorId)?.Table;

    private async Task<byte[]> FetchAsync(Cursor cursor, NpgsqlBatch command, CancellationToken cancellationToken)
    {
        await using (command)
        {
            var rows = new BsatnWriter();
            rows.WriteU32((uint)cursor.Id);
            rows.WriteU32(0);
            var count = 0;
            command.BatchCommands.Add(new NpgsqlBatchCommand($"FETCH {cursor.Rows} FROM {cursor.Name}"));
            await Translate(async () =>
            {
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    WriteRow(cursor.Table, reader, rows);
                    count++;
                }
            });
            var bytes = rows.WrittenSpan.ToArray();
            if (count < cursor.Rows)
            {
                CloseCursor(cursor.Id);
                bytes.AsSpan(0, 4).Clear();
            }
            BitConverter.TryWriteBytes(bytes.AsSpan(4, 4), (uint)count);
            cursor.Rows = Math.Clamp((int)(ChunkBytes * (long)Math.Max(count, 1) / Math.Max(bytes.Length - 8, 1)), 1, MaxChunkRows);
            return bytes;
        }
    }

    public async Task<long> CountAsync(TableSchema table, CancellationToken cancellationToken)
    {
        await using var command = Command(table.Count, []);
        return await Translate(async () => (long)(await command.ExecuteScalarAsync(cancellationToken))!);
    }

    public Task<byte[]?> FindAsync(TableSchema table, int column, ReadOnlyMemory<byte> key, CancellationToken cancellationToken)
    {
        var keyColumn = table.Columns[column];
        return SingleRowAsync(table, Command($"{table.SelectAll} WHERE {Sql.Quote(keyColumn.Name)} = $1", [(keyColumn, Values([keyColumn], key.Span)[0])]), cancellationToken);
    }

    public async Task<long> DeleteByAsync(TableSchema table, int column, ReadOnlyMemory<byte> key, CancellationToken cancellationToken)
    {
        var keyColumn = table.Columns[column];
        await using var command = Command($"DELETE FROM {table.QualifiedName} WHERE {Sql.Quote(keyColumn.Name)} = $1", [(keyColumn, Values([keyColumn], key.Span)[0])]);
        return await Translate(() => command.ExecuteNonQueryAsync(cancellationToken));
    }

    /// <summary>Replaces the row whose <paramref name="column"/> matches; null when there is none.</summary>
    public Task<byte[]?> UpdateByAsync(TableSchema table, int column, ReadOnlyMemory<byte> row, CancellationToken cancellationToken)
    {
        var values = Values(table.Columns, row.Span);
        var assignments = string.Join(", ", table.Columns.Select((c, i) => $"{Sql.Quote(c.Name)} = ${i + 1}"));
        var sql = $"UPDATE {table.QualifiedName} SET {assignments} WHERE {Sql.Quote(table.Columns[column].Name)} = ${column + 1}{table.ReturningAll}";
        return SingleRowAsync(table, Command(sql, table.Columns.Select((c, i) => (c, values[i]))), cancellationToken);
    }

    /// <summary>Deletes the index's rows within <paramref name="bounds"/>; returns how many went.</summary>
    public async Task<long> DeleteRangeAsync(TableIndex index, ReadOnlyMemory<byte> bounds, CancellationToken cancellationToken)
    {
        var (sql, parameters) = index.Delete(bounds.Span);
        await using var command = Command(sql, parameters);
        return await Translate(() => command.ExecuteNonQueryAsync(cancellationToken));
    }

    public async Task<long> DeleteRowAsync(TableSchema table, ReadOnlyMemory<byte> row, CancellationToken cancellationToken)
    {
        var values = Values(table.Columns, row.Span);
        var key = table.RowKey.Select(c => (Column: c, Value: values[IndexOf(table, c)])).ToList();
        var conditions = string.Join(" AND ", key.Select((k, i) => $"{Sql.Quote(k.Column.Name)} IS NOT DISTINCT FROM ${i + 1}"));
        await using var command = Command($"DELETE FROM {table.QualifiedName} WHERE {conditions}", key.Select(k => (k.Column, k.Value)));
        return await Translate(() => command.ExecuteNonQueryAsync(cancellationToken));
    }

    /// <summary>An open cursor: its table, its quoted name and the rows its next FETCH asks for.</summary>
    private sealed class Cursor(TableSchema table, int id)
    {
        public TableSchema Table { get; } = table;

        public int Id { get; } = id;

        public string Name { get; } = $"procyon_cursor_{id}";

        public int Rows { get; set; } = FirstChunkRows;
    }

    public async ValueTask DisposeAsync()
    {
        await _transaction.DisposeAsync();
        await _connection.DisposeAsync();
        _onDispose();
    }

    private static int IndexOf(TableSchema table, TableColumn column) => table.Columns.ToList().IndexOf(column);

    private static object[] Values(IReadOnlyList<TableColumn> columns, ReadOnlySpan<byte> bsatn)
    {
        var reader = new BsatnReader(bsatn);
        var values = new object[columns.Count];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = columns[i].Storage.ReadParameter(ref reader);
        }
        return reader.Remaining == 0 ? values : throw new InvalidDataException($"{reader.Remaining} bytes left over after the row");
    }

    /// <summary>A savepoint, after the prelude if it is still to be sent: rolling back to it keeps the timeouts.</summary>
    private Task SavepointAsync(string name, CancellationToken cancellationToken) => ExecuteAsync($"SAVEPOINT {name}", cancellationToken);

    /// <summary>Runs catalog or DDL statements of the host's own in this transaction.</summary>
    internal async Task ExecuteAsync(string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var command = CreateCommand(sql, parameters);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The default of <paramref name="column"/> as a SQL literal, spelled by Postgres from the typed value (DDL takes no parameters).</summary>
    internal async Task<string> LiteralAsync(TableColumn column, CancellationToken cancellationToken)
    {
        await using var command = CreateCommand("SELECT quote_nullable(@value::text)");
        command.Parameters.Add(new NpgsqlParameter("value", column.Storage.DbType) { Value = column.Default });
        return (string)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>A command of the host's own in this transaction, with named parameters (which allow several statements).</summary>
    internal NpgsqlCommand CreateCommand(string sql, params (string Name, object Value)[] parameters)
    {
        var prelude = TakePrelude();
        var command = new NpgsqlCommand(prelude.Length == 0 ? sql : $"{string.Join("; ", prelude)}; {sql}", _connection, _transaction);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return command;
    }

    /// <summary>A table call's statement, with positional parameters, after the prelude if it is still to be sent.</summary>
    private NpgsqlBatch Command(string sql, IEnumerable<(TableColumn Column, object Value)> parameters)
    {
        var batch = Batch();
        var command = new NpgsqlBatchCommand(sql);
        foreach (var (column, value) in parameters)
        {
            command.Parameters.Add(new NpgsqlParameter { NpgsqlDbType = column.Storage.DbType, Value = value });
        }
        batch.BatchCommands.Add(command);
        return batch;
    }

    /// <summary>A batch in this transaction holding the prelude and closes still to be sent.</summary>
    private NpgsqlBatch Batch()
    {
        var batch = new NpgsqlBatch(_connection, _transaction);
        foreach (var statement in TakePrelude())
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand(statement));
        }
        return batch;
    }

    private string[] TakePrelude()
    {
        string[] prelude = _closing.Count == 0 ? _prelude ?? [] : [.. _prelude ?? [], .. _closing];
        _prelude = null;
        _closing.Clear();
        return prelude;
    }

    private async Task<byte[]?> SingleRowAsync(TableSchema table, NpgsqlBatch command, CancellationToken cancellationToken)
    {
        await using (command)
        {
            return await Translate(async () =>
            {
                await using var reader = await command.ExecuteReaderAsync(cancellationToken);
                return await reader.ReadAsync(cancellationToken) ? ReadRow(table, reader) : null;
            });
        }
    }

    /// <summary>The reader's current row as BSATN in the table's row type.</summary>
    internal static byte[] ReadRow(TableSchema table, NpgsqlDataReader reader)
    {
        var row = new BsatnWriter();
        WriteRow(table, reader, row);
        return row.WrittenSpan.ToArray();
    }

    private static void WriteRow(TableSchema table, NpgsqlDataReader reader, BsatnWriter row)
    {
        for (var i = 0; i < table.Columns.Count; i++)
        {
            table.Columns[i].Storage.WriteValue(reader, i, row);
        }
    }

    internal static async Task Translate(Func<Task> operation) => await Translate(async () =>
    {
        await operation();
        return true;
    });

    /// <summary>Turns the Postgres errors a module can act on into their own exceptions.</summary>
    internal static async Task<T> Translate<T>(Func<Task<T>> operation)
    {
        try
        {
            return await operation();
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new UniqueViolationException($"{e.MessageText}{(e.Detail is null ? "" : ": " + e.Detail)}", e);
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected)
        {
            throw new SerializationFailureException(e);
        }
    }
}
