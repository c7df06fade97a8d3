using Procyon.Runtime;
using Procyon.Sats;

namespace Procyon.Tests;

/// <summary>The server's UUID v7 clock, and a Uuid's value as System.Guid, without a server.</summary>
public sealed class UuidValueTests
{
    private static readonly DateTimeOffset Noon = new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero);

    [Fact]
    public void The_clock_is_milliseconds_times_65536_plus_a_counter_that_carries_into_the_milliseconds()
    {
        var time = new SetTime(Noon);
        var clock = new UuidClock(time);
        var millis = (ulong)Noon.ToUnixTimeMilliseconds();

        var readings = Enumerable.Range(0, 70_000).Select(_ => clock.Next()).ToList();

        Assert.Equal(millis << 16, readings[0]);
        Assert.Equal((millis << 16) + 65_535, readings[65_535]);
        Assert.Equal((millis + 1) << 16, readings[65_536]);
        Assert.Equal(Enumerable.Range(0, 70_000).Select(i => (millis << 16) + (ulong)i), readings);
        time.Now = Noon.AddMilliseconds(5);
        Assert.Equal((millis + 5) << 16, clock.Next());
    }

    [Fact]
    public void The_clock_never_goes_back_when_the_system_clock_does_and_holds_every_time_from_1970_to_9999()
    {
        var time = new SetTime(Noon);
        var clock = new UuidClock(time);
        var before = clock.Next();

        time.Now = Noon.AddMinutes(-10);
        Assert.Equal(before + 1, clock.Next());
        Assert.Equal(1UL, new UuidClock(new SetTime(DateTimeOffset.UnixEpoch.AddDays(-1))).Next());
        Assert.Equal((ulong)DateTimeOffset.MaxValue.ToUnixTimeMilliseconds(), new UuidClock(new SetTime(DateTimeOffset.MaxValue)).Next() >> 16);
    }

    [Fact]
    public void Readings_taken_at_once_on_many_threads_are_all_different()
    {
        var clock = new UuidClock(new SetTime(Noon));

        var readings = new ulong[8][];
        Parallel.For(0, 8, thread => readings[thread] = Enumerable.Range(0, 20_000).Select(_ => clock.Next()).ToArray());

        Assert.All(readings, r => Assert.True(r.Zip(r.Skip(1)).All(pair => pair.First < pair.Second)));
        Assert.Equal(160_000, readings.SelectMany(r => r).Distinct().Count());
    }

    [Fact]
    public void Each_database_has_a_clock_of_its_own_so_one_that_runs_ahead_moves_no_other()
    {
        var clocks = new UuidClocks(new SetTime(Noon));
        var millis = (ulong)Noon.ToUnixTimeMilliseconds();

        for (var i = 0; i < 200_000; i++)
        {
            clocks.For("greedy").Next();
        }

        Assert.True(clocks.For("greedy").Next() >> 16 > millis + 2);
        Assert.Equal(millis << 16, clocks.For("calm").Next());
        Assert.Same(clocks.For("calm"), clocks.For("calm"));
        clocks.Forget("greedy");
        Assert.Equal(millis << 16, clocks.For("greedy").Next());
    }

    [Fact]
    public void A_uuid_value_is_the_RFC_bytes_big_endian_whatever_System_Guid_does_with_them()
    {
        var value = UInt128.Parse("00112233445566778899aabbccddeeff", System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);

        Assert.Equal("00112233-4455-6677-8899-aabbccddeeff", UuidValues.Format(value));
        Assert.Equal(Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), UuidValues.ToGuid(value));
        Assert.Equal(value, UuidValues.FromGuid(UuidValues.ToGuid(value)));
        Assert.True(UuidValues.TryParse("00112233-4455-6677-8899-AABBCCDDEEFF", out var upper));
        Assert.Equal(value, upper);
        Assert.False(UuidValues.TryParse(" 00112233-4455-6677-8899-aabbccddeeff", out _));
        Assert.False(UuidValues.TryParse("00112233445566778899aabbccddeeff", out _));
    }

    private sealed class SetTime(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
