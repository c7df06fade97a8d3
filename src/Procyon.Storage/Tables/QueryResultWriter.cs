using System.Globalization;
using System.Text.Json;
using Npgsql;
using Procyon.Sats;

namespace Procyon.Storage.Tables;

/// <summary>What the SQL endpoint answers at most.</summary>
/// <param name="Rows">Rows written; the answer says when there were more.</param>
/// <param name="Bytes">Bytes of JSON; beyond them the answer is refused with <see cref="AnswerTooLargeException"/>.</param>
/// <param name="Timeout">The statement timeout.</param>
public sealed record QueryLimits(int Rows, long Bytes, TimeSpan Timeout);

/// <summary>The answer to a query would be larger than <see cref="QueryLimits.Bytes"/> (413).</summary>
public sealed class AnswerTooLargeException(long limit) : Exception(
    $"the answer is larger than the limit of {limit} bytes (Procyon:Api:SqlMaxBytes): ask for fewer rows (LIMIT, WHERE), fewer columns or shorter values (left(column, 100), length(column))");

/// <summary>
/// Writes a query's rows as <c>{columns, rows, truncated}</c> within <see cref="QueryLimits"/>,
/// from a reader opened with <c>CommandBehavior.SequentialAccess</c> (which never holds a whole row):
/// each value's length on the wire is weighed against the bytes left before it is read, text and
/// bytes are copied in chunks, and the answer is refused as soon as it passes the limit. So what it
/// holds stays near the limit, whatever a row or a value weighs.
/// </summary>
internal sealed class QueryResultWriter(NpgsqlDataReader reader, QueryLimits limits)
{
    private const int ChunkBytes = 16 << 10;

    /// <summary>The largest integer JavaScript numbers hold exactly; larger ones are written as text.</summary>
    private const long MaxSafeInteger = (1L << 53) - 1;

    private readonly ChunkedBuffer _output = new();
    private readonly byte[] _chunk = new byte[ChunkBytes];
    private readonly char[] _hex = new char[2 * ChunkBytes];

    /// <summary>Whether Postgres sent every row; otherwise the row limit cut the answer or something refused it.</summary>
    public bool ReadAll { get; private set; }

    /// <summary>The rows written.</summary>
    public int Rows { get; private set; }

    public async Task<ChunkedBuffer> WriteAsync(CancellationToken cancellationToken)
    {
        await using (var json = new Utf8JsonWriter(_output))
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
            for (var count = 0; ; count++)
            {
                ReadAll = !await reader.ReadAsync(cancellationToken);
                if (ReadAll || count == limits.Rows)
                {
                    Rows = count;
                    break;
                }
                json.WriteStartArray();
                for (var i = 0; i < reader.FieldCount; i++)
                {
                    await WriteCellAsync(json, i, cancellationToken);
                }
                json.WriteEndArray();
            }
            json.WriteEndArray();
            json.WriteBoolean("truncated", !ReadAll);
            json.WriteEndObject();
            EnsureWithinLimit(json);
        }
        return _output;
    }

    private async Task WriteCellAsync(Utf8JsonWriter json, int ordinal, CancellationToken cancellationToken)
    {
        if (await reader.IsDBNullAsync(ordinal, cancellationToken))
        {
            json.WriteNullValue();
            return;
        }
        // With a null buffer: the value's length on the wire, known before any of it is read.
        var length = reader.GetBytes(ordinal, 0, null, 0, 0);
        if (length > Left(json))
        {
            throw new AnswerTooLargeException(limits.Bytes);
        }
        switch (reader.GetPostgresType(ordinal).InternalName)
        {
            case "json" or "jsonb":
                await WriteJsonAsync(json, ordinal, cancellationToken);
                break;
            case "bytea":
                await WriteChunksAsync(json, ordinal, hex: true, cancellationToken);
                break;
            case "text" or "varchar" or "bpchar" or "name" or "xml" or "citext":
                await WriteChunksAsync(json, ordinal, hex: false, cancellationToken);
                break;
            case "numeric":
                WriteNumeric(json, ordinal, (int)length);
                break;
            default:
                WriteValue(json, await reader.GetFieldValueAsync<object>(ordinal, cancellationToken));
                break;
        }
        EnsureWithinLimit(json);
    }

    private async Task WriteJsonAsync(Utf8JsonWriter json, int ordinal, CancellationToken cancellationToken)
    {
        // Postgres has checked the syntax; the depth is held to what the host parses itself.
        var text = await reader.GetFieldValueAsync<byte[]>(ordinal, cancellationToken);
        json.WriteRawValue(
            ValueLimits.IsWithinDepth(text)
                ? text
                : throw new QueryRejectedException($"column {reader.GetName(ordinal)} holds JSON nested deeper than {ValueLimits.MaxDepth} levels"),
            skipInputValidation: true);
    }

    /// <summary>A text value (UTF-8 on the wire) or bytes (as lowercase hex) as one JSON string, a chunk at a time.</summary>
    private async Task WriteChunksAsync(Utf8JsonWriter json, int ordinal, bool hex, CancellationToken cancellationToken)
    {
        await using var value = await reader.GetStreamAsync(ordinal, cancellationToken);
        while (true)
        {
            var read = await value.ReadAsync(_chunk, cancellationToken);
            if (hex)
            {
                Convert.TryToHexStringLower(_chunk.AsSpan(0, read), _hex, out var chars);
                json.WriteStringValueSegment(_hex.AsSpan(0, chars), isFinalSegment: read == 0);
            }
            else
            {
                json.WriteStringValueSegment(_chunk.AsSpan(0, read), isFinalSegment: read == 0);
            }
            EnsureWithinLimit(json);
            if (read == 0)
            {
                return;
            }
        }
    }

    private void WriteNumeric(Utf8JsonWriter json, int ordinal, int length)
    {
        var raw = new byte[length];
        // Npgsql reads raw bytes only synchronously; a numeric is at most about 74 KB.
        reader.GetBytes(ordinal, 0, raw, 0, length);
        WriteDecimal(json, NumericText.Format(raw));
    }

    /// <summary>A decimal number as a JSON number while it is an integer JavaScript holds exactly, else as text.</summary>
    private static void WriteDecimal(Utf8JsonWriter json, string text)
    {
        if (decimal.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value == decimal.Truncate(value) && IsSafeInteger(value))
        {
            json.WriteRawValue(text);
        }
        else
        {
            json.WriteStringValue(text);
        }
    }

    private static bool IsSafeInteger(decimal value) => value is >= -MaxSafeInteger and <= MaxSafeInteger;

    private static void WriteValue(Utf8JsonWriter json, object? cell)
    {
        switch (cell)
        {
            case bool value:
                json.WriteBooleanValue(value);
                break;
            case null or DBNull:
                json.WriteNullValue();
                break;
            case short or int:
                json.WriteRawValue(Convert.ToString(cell, CultureInfo.InvariantCulture)!);
                break;
            case float or double when double.IsFinite(Convert.ToDouble(cell, CultureInfo.InvariantCulture)):
                json.WriteRawValue(Convert.ToString(cell, CultureInfo.InvariantCulture)!);
                break;
            case float or double:
                // JSON has no NaN or infinities: spelled as the values of the module JSON mapping are.
                var number = Convert.ToDouble(cell, CultureInfo.InvariantCulture);
                json.WriteStringValue(double.IsNaN(number) ? "NaN" : number > 0 ? "Infinity" : "-Infinity");
                break;
            case Array items:
                json.WriteStartArray();
                foreach (var item in items)
                {
                    WriteValue(json, item);
                }
                json.WriteEndArray();
                break;
            case long value when IsSafeInteger(value):
                json.WriteNumberValue(value);
                break;
            case long value:
                json.WriteStringValue(value.ToString(CultureInfo.InvariantCulture));
                break;
            case decimal value:
                WriteDecimal(json, value.ToString(CultureInfo.InvariantCulture));
                break;
            case DateTime time:
                json.WriteStringValue(time.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture));
                break;
            case var other:
                json.WriteStringValue(Convert.ToString(other, CultureInfo.InvariantCulture));
                break;
        }
    }

    private long Left(Utf8JsonWriter json) => limits.Bytes - json.BytesCommitted - json.BytesPending;

    private void EnsureWithinLimit(Utf8JsonWriter json)
    {
        if (Left(json) < 0)
        {
            throw new AnswerTooLargeException(limits.Bytes);
        }
    }
}
