using System.ComponentModel.DataAnnotations;

namespace Procyon.Server.Hub;

/// <summary>Limits of the SignalR hub, bound from the <c>Procyon:Hub</c> section.</summary>
public sealed class HubOptions
{
    public const string Section = "Procyon:Hub";

    /// <summary>
    /// Bytes of results one connection may have waiting to be written (each result's size is
    /// estimated from its JSON); a connection that falls further behind is aborted. One result
    /// is always accepted, whatever its size, when nothing else waits. A <c>Results</c> stream
    /// keeps at most as many bytes, dropping its oldest results.
    /// </summary>
    [Range(64L << 10, 1L << 30)]
    public long MaxPendingBytesPerConnection { get; set; } = 4 << 20;

    /// <summary>Results one connection may have waiting to be written; beyond it the connection is aborted.</summary>
    [Range(1, 1_000_000)]
    public int MaxPendingResultsPerConnection { get; set; } = 4096;
}
