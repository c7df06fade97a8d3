using System.ComponentModel.DataAnnotations;

namespace Procyon.Runtime.Scheduling;

/// <summary>The scheduler of scheduled tables, bound from the <c>Procyon:Scheduler</c> section.</summary>
public sealed class SchedulerOptions
{
    public const string Section = "Procyon:Scheduler";

    /// <summary>Scheduled runs at once; a sleeping procedure holds one, the others go on.</summary>
    [Range(1, 1024)]
    public int Workers { get; set; } = 16;

    /// <summary>How long a claimed procedure run may take before another server runs it again (at-least-once).</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan ProcedureLease { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The longest the scheduler sleeps without looking, should a notification be lost.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan MaxIdle { get; set; } = TimeSpan.FromSeconds(30);
}
