namespace Procyon.Tests.Infrastructure;

/// <summary>
/// Tests that assert on elapsed time (the one-second sleep, the CPU deadline) run after the
/// parallel ones and alone, so other test classes cannot starve them of CPU. So do tests that
/// compile many modules from scratch, so they cannot starve the parallel ones that measure
/// lateness (the scheduler's isolation tests).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TimingCollection
{
    public const string Name = "Timing";
}
