namespace Procyon.Runtime;

/// <summary>Module time: microseconds since the Unix epoch, as the SDK's <c>Timestamp</c>.</summary>
internal static class UnixTime
{
    public static long NowMicros() => ToMicros(DateTimeOffset.UtcNow);

    public static DateTimeOffset ToDateTimeOffset(long micros) => DateTimeOffset.UnixEpoch.AddTicks(micros * TimeSpan.TicksPerMicrosecond);

    public static long ToMicros(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) / TimeSpan.TicksPerMicrosecond;
}
