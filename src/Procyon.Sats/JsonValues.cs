using System.Globalization;
using System.Text.Json;

namespace Procyon.Sats;

/// <summary>Shared facts of the JSON mapping (README, "Values in JSON").</summary>
internal static class JsonValues
{
    /// <summary>Integers beyond ±(2^53 − 1) are written as strings so JavaScript does not round them.</summary>
    public const long MaxSafeInteger = (1L << 53) - 1;

    public static readonly long UnixEpochTicks = DateTimeOffset.UnixEpoch.UtcTicks;

    public static string Describe(JsonElement json) => json.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => $"an array of {json.GetArrayLength()}",
        JsonValueKind.String => Truncate(JsonSerializer.Serialize(json.GetString())),
        JsonValueKind.Null => "null",
        _ => Truncate(json.GetRawText()),
    };

    private static string Truncate(string text) => text.Length <= 64 ? text : text[..61] + "...";

    private static readonly long MinTimestampMicros = (DateTimeOffset.MinValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;
    private static readonly long MaxTimestampMicros = (DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;

    /// <summary>RFC 3339 with microseconds, or null outside years 1 to 9999.</summary>
    public static string? TryFormatTimestamp(long micros) =>
        micros < MinTimestampMicros || micros > MaxTimestampMicros
            ? null
            : new DateTimeOffset(UnixEpochTicks + micros * TimeSpan.TicksPerMicrosecond, TimeSpan.Zero)
                .ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    public static bool TryParseTimestamp(string text, out long micros)
    {
        micros = 0;
        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var value))
        {
            return false;
        }
        micros = (value.UtcTicks - UnixEpochTicks) / TimeSpan.TicksPerMicrosecond;
        return true;
    }
}
