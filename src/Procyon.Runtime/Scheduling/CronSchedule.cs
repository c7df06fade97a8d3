using Cronos;

namespace Procyon.Runtime.Scheduling;

/// <summary>
/// The <c>ScheduleAt::Cron</c> expressions of scheduled rows, parsed by Cronos in UTC: six
/// fields (seconds first) or the classic five (minutes first, at second 0).
/// </summary>
internal static class CronSchedule
{
    /// <summary>The first occurrence after <paramref name="after"/>, or null when the expression has none left; <see cref="CronFormatException"/> when it is not a cron expression.</summary>
    public static DateTime? Next(string expression, DateTime after)
    {
        var fields = expression.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        var cron = CronExpression.Parse(expression, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
        return cron.GetNextOccurrence(DateTime.SpecifyKind(after, DateTimeKind.Utc));
    }
}
