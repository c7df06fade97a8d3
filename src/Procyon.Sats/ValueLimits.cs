using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Procyon.Sats;

/// <summary>
/// Bounds on one value as the host converts it between JSON and BSATN, whoever sent it (a caller,
/// a module, a stored row): no value can exhaust the host's stack, memory or time. README,
/// "Values in JSON", lists them.
/// </summary>
public static class ValueLimits
{
    /// <summary>
    /// Levels a value may nest; each array item, struct field and enum or option payload is one
    /// level. JSON is parsed to the same depth, so JSON the host writes always reads back.
    /// </summary>
    public const int MaxDepth = 256;

    /// <summary>
    /// Elements of zero-sized types (unit, structs of only those) that the arrays of one value may
    /// hold in all: they take no BSATN bytes, so the bytes present cannot bound their number.
    /// </summary>
    public const int MaxZeroSizedElements = 65_536;

    /// <summary>Bytes one conversion may write, JSON or BSATN.</summary>
    public const int MaxOutputBytes = 32 << 20;

    /// <summary>How the host parses JSON values: to <see cref="MaxDepth"/>.</summary>
    public static JsonDocumentOptions DocumentOptions { get; } = new() { MaxDepth = MaxDepth };

    /// <summary>Whether UTF-8 JSON nests no deeper than <see cref="MaxDepth"/>; read token by token, so any depth is safe to check.</summary>
    public static bool IsWithinDepth(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions { MaxDepth = MaxDepth });
        try
        {
            while (reader.Read())
            {
            }
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

/// <summary>What one conversion has spent of <see cref="ValueLimits"/>; each conversion has its own.</summary>
internal sealed class ValueBudget
{
    private int _zeroSizedLeft = ValueLimits.MaxZeroSizedElements;

    /// <summary>Null when a value at <paramref name="depth"/> may be converted after <paramref name="written"/> bytes of output; else why not.</summary>
    public static string? Enter(int depth, long written) =>
        // The stack check is a second guard: a stack overflow ends the process and cannot be caught.
        depth >= ValueLimits.MaxDepth || !RuntimeHelpers.TryEnsureSufficientExecutionStack()
            ? $"the value is nested deeper than {ValueLimits.MaxDepth} levels"
            : Size(written);

    /// <summary>Null when <paramref name="written"/> bytes of output are within the limit; else why not.</summary>
    public static string? Size(long written) =>
        written > ValueLimits.MaxOutputBytes ? $"the value is larger than the limit of {ValueLimits.MaxOutputBytes} bytes" : null;

    /// <summary>Null when an array of <paramref name="count"/> zero-sized elements fits what is left; else why not.</summary>
    public string? TakeZeroSized(long count)
    {
        if (count > _zeroSizedLeft)
        {
            return $"an array of {count} zero-sized elements is beyond the limit of {ValueLimits.MaxZeroSizedElements} such elements in one value";
        }
        _zeroSizedLeft -= (int)count;
        return null;
    }
}
