using System.Data;
using Npgsql;

namespace Procyon.Storage.Tables;

/// <summary>A query the SQL endpoint refused or Postgres rejected; the message says why (400).</summary>
/// <param name="inner">What Postgres said, when it refused it.</param>
public sealed class QueryRejectedException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A query touched what its reader may not read, such as a private table (403).</summary>
public sealed class QueryForbiddenException(string message) : Exception(message);

/// <summary>
/// Read-only SQL over one database's tables, for <c>POST /v1/databases/{db}/sql</c>. The query runs
/// as one of that database's own login roles (the owner's reads every table of its schema,
/// anyone else's only the public ones; neither reads other schemas), on a session of
/// <see cref="ReaderConnections"/>, in a read-only transaction, one statement at a time, within
/// <see cref="QueryLimits"/>.
/// </summary>
public sealed class ReadOnlyQueries(NpgsqlDataSource dataSource, ReaderConnections readers)
{
    private const string OwnerPasswordSql = "SELECT password FROM procyon.readers WHERE db = @db";
    private const string PublicPasswordSql = "SELECT public_password FROM procyon.readers WHERE db = @db";

    /// <summary>Runs <paramref name="sql"/> and returns <c>{columns, rows, truncated}</c> as JSON; counted by how it ended.</summary>
    public async Task<ChunkedBuffer> RunAsync(string database, SqlReader reader, string sql, QueryLimits limits, CancellationToken cancellationToken)
    {
        try
        {
            var (answer, rows) = await QueryAsync(database, reader, sql, limits, cancellationToken);
            StorageTelemetry.Queried(database, "ok", rows, answer.Length);
            return answer;
        }
        catch (Exception e)
        {
            StorageTelemetry.Queried(database, StatusOf(e));
            throw;
        }
    }

    /// <summary>How a query that threw ended, for <c>procyon.sql.queries</c>.</summary>
    private static string StatusOf(Exception e) => e switch
    {
        QueryRejectedException { InnerException: PostgresException { SqlState: PostgresErrorCodes.QueryCanceled } } => "timeout",
        NpgsqlException { InnerException: TimeoutException } => "timeout",
        QueryRejectedException => "rejected",
        QueryForbiddenException => "forbidden",
        AnswerTooLargeException => "too_large",
        OverloadedException => "overloaded",
        OperationCanceledException => "cancelled",
        _ => "error",
    };

    /// <summary>The answer and how many rows it holds.</summary>
    private async Task<(ChunkedBuffer Answer, int Rows)> QueryAsync(string database, SqlReader reader, string sql, QueryLimits limits, CancellationToken cancellationToken)
    {
        using var lease = readers.Lease(database, reader, await PasswordAsync(database, reader, cancellationToken));
        await using var connection = await lease.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var commandTimeout = CommandTimeoutSeconds(limits.Timeout);
        await using (var setup = new NpgsqlCommand(
            $"SET TRANSACTION READ ONLY; SET LOCAL search_path TO {Sql.Quote(Sql.SchemaOf(database))}; SET LOCAL statement_timeout = {(long)limits.Timeout.TotalMilliseconds}",
            connection,
            transaction) { CommandTimeout = commandTimeout })
        {
            await setup.ExecuteNonQueryAsync(cancellationToken);
        }
        // A batch command is sent as written: Postgres refuses several statements in it.
        await using var batch = new NpgsqlBatch(connection, transaction) { BatchCommands = { new NpgsqlBatchCommand(sql) }, Timeout = commandTimeout };
        try
        {
            var rows = await batch.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken);
            var writer = new QueryResultWriter(rows, limits);
            try
            {
                return (await writer.WriteAsync(cancellationToken), writer.Rows);
            }
            finally
            {
                await CloseAsync(batch, rows, cancel: !writer.ReadAll);
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new QueryForbiddenException($"{e.MessageText}: only the owner's token reads private tables (tables are private unless marked #[table(public)])");
        }
        catch (PostgresException e)
        {
            throw new QueryRejectedException($"{e.MessageText} (SQLSTATE {e.SqlState})", e);
        }
        catch (NotSupportedException e)
        {
            // COPY, say, which the wire protocol runs in a mode of its own.
            throw new QueryRejectedException($"the SQL endpoint does not run this statement: {e.Message}");
        }
    }

    /// <summary>
    /// Closes the reader. When rows may be left, cancels the query first: closing would otherwise
    /// read (and drop) every row Postgres has yet to send.
    /// </summary>
    private static async Task CloseAsync(NpgsqlBatch batch, NpgsqlDataReader rows, bool cancel)
    {
        if (!cancel)
        {
            await rows.DisposeAsync();
            return;
        }
        batch.Cancel();
        try
        {
            await rows.DisposeAsync();
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.QueryCanceled)
        {
            // The cancel asked for above; the answer is already decided.
        }
    }

    /// <summary>
    /// Npgsql's own timeout for the query's commands, in whole seconds: a little past the statement
    /// timeout, so that Postgres ends a slow query with its own message, whatever the connection
    /// string's Command Timeout (30 s by default) says.
    /// </summary>
    internal static int CommandTimeoutSeconds(TimeSpan statementTimeout) => (int)Math.Ceiling(statementTimeout.TotalSeconds) + 1;

    private async Task<string> PasswordAsync(string database, SqlReader reader, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(reader == SqlReader.Owner ? OwnerPasswordSql : PublicPasswordSql);
        command.Parameters.AddWithValue("db", database);
        return await command.ExecuteScalarAsync(cancellationToken) as string
            ?? throw new QueryRejectedException($"database '{database}' has no tables to query");
    }
}
