using System.Buffers;
using System.Numerics;
using System.Text.Json;
using Npgsql;
using Procyon.Sats;

namespace Procyon.Storage.Tables;

/// <summary>A query the SQL endpoint refused or Postgres rejected; the message says why (400).</summary>
public sealed class QueryRejectedException(string message) : Exception(message);

/// <summary>A query touched what its reader may not read, such as a private table (403).</summary>
public sealed class QueryForbiddenException(string message) : Exception(message);

/// <summary>
/// Read-only SQL over one database's tables, for <c>POST /v1/databases/{db}/sql</c>. The query runs
/// as one of that database's own login roles (the owner's reads every table of its schema,
/// anyone else's only the public ones; neither reads other schemas), in a read-only
/// transaction with a statement timeout, one statement at a time, and returns at most a row limit.
/// </summary>
public sealed class ReadOnlyQueries(NpgsqlDataSource dataSource)
{
    private const string OwnerPasswordSql = "SELECT password FROM procyon.readers WHERE db = @db";
    private const string PublicPasswordSql = "SELECT public_password FROM procyon.readers WHERE db = @db";

    /// <summary>Runs <paramref name="sql"/> and returns <c>{columns, rows, truncated}</c> as JSON.</summary>
    public async Task<byte[]> RunAsync(string database, SqlReader reader, string sql, int rowLimit, TimeSpan timeout, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(await ReaderConnectionStringAsync(database, reader, cancellationToken));
        await connection.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        var commandTimeout = CommandTimeoutSeconds(timeout);
        await using (var setup = new NpgsqlCommand(
            $"SET TRANSACTION READ ONLY; SET LOCAL search_path TO {Sql.Quote(Sql.SchemaOf(database))}; SET LOCAL statement_timeout = {(long)timeout.TotalMilliseconds}",
            connection,
            transaction) { CommandTimeout = commandTimeout })
        {
            await setup.ExecuteNonQueryAsync(cancellationToken);
        }
        // A batch command is sent as written: Postgres refuses several statements in it.
        await using var batch = new NpgsqlBatch(connection, transaction) { BatchCommands = { new NpgsqlBatchCommand(sql) }, Timeout = commandTimeout };
        try
        {
            await using var rows = await batch.ExecuteReaderAsync(cancellationToken);
            return await WriteAsync(rows, rowLimit, cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            throw new QueryForbiddenException($"{e.MessageText}: only the owner's token reads private tables (tables are private unless marked #[table(public)])");
        }
        catch (PostgresException e)
        {
            throw new QueryRejectedException($"{e.MessageText} (SQLSTATE {e.SqlState})");
        }
    }

    /// <summary>
    /// Npgsql's own timeout for the query's commands, in whole seconds: a little past the statement
    /// timeout, so that Postgres ends a slow query with its own message, whatever the connection
    /// string's Command Timeout (30 s by default) says.
    /// </summary>
    internal static int CommandTimeoutSeconds(TimeSpan statementTimeout) => (int)Math.Ceiling(statementTimeout.TotalSeconds) + 1;

    private async Task<string> ReaderConnectionStringAsync(string database, SqlReader reader, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(reader == SqlReader.Owner ? OwnerPasswordSql : PublicPasswordSql);
        command.Parameters.AddWithValue("db", database);
        var password = await command.ExecuteScalarAsync(cancellationToken) as string
            ?? throw new QueryRejectedException($"database '{database}' has no tables to query");
        return new NpgsqlConnectionStringBuilder(dataSource.ConnectionString)
        {
            Username = Sql.ReaderRoleOf(dataSource, database, reader),
            Password = password,
            // Occasional queries: no idle sessions left behind in the database.
            Pooling = false,
        }.ConnectionString;
    }

    private static async Task<byte[]> WriteAsync(NpgsqlDataReader reader, int rowLimit, CancellationToken cancellationToken)
    {
        var output = new ArrayBufferWriter<byte>();
        await using (var json = new Utf8JsonWriter(output))
        {
            json.WriteStartObject();
            json.WriteStartArray("columns");
            for (var i = 0; i < reader.FieldCount; i++)
            {
                json.WriteStartObject();
                json.WriteString("name", reader.GetName(i));
                json.WriteString("type", reader.GetDataTypeName(i));
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteStartArray("rows");
            var count = 0;
            var truncated = false;
            while (await reader.ReadAsync(cancellationToken))
            {
                if (count++ == rowLimit)
                {
                    truncated = true;
                    break;
                }
                json.WriteStartArray();
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    WriteValue(json, reader, i);
                }
                json.WriteEndArray();
            }
            json.WriteEndArray();
            json.WriteBoolean("truncated", truncated);
            json.WriteEndObject();
        }
        return output.WrittenSpan.ToArray();
    }

    /// <summary>A decimal when it fits; u128-sized integers do not.</summary>
    private static object Numeric(NpgsqlDataReader reader, int ordinal)
    {
        try
        {
            return reader.GetDecimal(ordinal);
        }
        catch (Exception e) when (e is InvalidCastException or OverflowException)
        {
            return reader.GetFieldValue<BigInteger>(ordinal);
        }
    }

    private static void WriteValue(Utf8JsonWriter json, NpgsqlDataReader reader, int ordinal)
    {
        if (reader.IsDBNull(ordinal))
        {
            json.WriteNullValue();
            return;
        }
        if (reader.GetDataTypeName(ordinal) is "jsonb" or "json")
        {
            // Postgres has checked the syntax; the depth is held to what the host parses itself.
            var text = System.Text.Encoding.UTF8.GetBytes(reader.GetString(ordinal));
            json.WriteRawValue(
                ValueLimits.IsWithinDepth(text)
                    ? text
                    : throw new QueryRejectedException($"column {reader.GetName(ordinal)} holds JSON nested deeper than {ValueLimits.MaxDepth} levels"),
                skipInputValidation: true);
            return;
        }
        var cell = reader.GetDataTypeName(ordinal).StartsWith("numeric", StringComparison.Ordinal) ? Numeric(reader, ordinal) : reader.GetValue(ordinal);
        switch (cell)
        {
            case bool value:
                json.WriteBooleanValue(value);
                break;
            case short or int or float or double:
                json.WriteRawValue(Convert.ToString(cell, System.Globalization.CultureInfo.InvariantCulture)!);
                break;
            case long value when Math.Abs(value) <= (1L << 53) - 1:
                json.WriteNumberValue(value);
                break;
            case decimal value when Math.Abs(value) <= (1L << 53) - 1 && value == Math.Truncate(value):
                json.WriteNumberValue(value);
                break;
            case BigInteger or long or decimal:
                json.WriteStringValue(Convert.ToString(cell, System.Globalization.CultureInfo.InvariantCulture));
                break;
            case byte[] bytes:
                json.WriteStringValue(Convert.ToHexStringLower(bytes));
                break;
            case DateTime time:
                json.WriteStringValue(time.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", System.Globalization.CultureInfo.InvariantCulture));
                break;
            case var other:
                json.WriteStringValue(Convert.ToString(other, System.Globalization.CultureInfo.InvariantCulture));
                break;
        }
    }
}
