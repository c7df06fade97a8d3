using System.Text.Json;
using Procyon.Sats;
using static Procyon.Testing.HandmadeModule;

namespace Procyon.Tests;

/// <summary>The codec's own bounds, without a server: what <see cref="ValueLimits"/> promises for any type and any bytes.</summary>
public sealed class ValueLimitsTests
{
    private static readonly AlgebraicType Unit = AlgebraicType.Unit;

    [Theory]
    [InlineData(0x8000_0000u)]
    [InlineData(0x0010_0000u)]
    [InlineData((uint)ValueLimits.MaxZeroSizedElements + 1)]
    public void An_array_of_units_longer_than_the_limit_is_an_error_not_that_many_nulls(uint length)
    {
        Assert.Throws<InvalidDataException>(() => BsatnToJson.Convert(BitConverter.GetBytes(length), AlgebraicType.Array(Unit), Typespace.Empty));
    }

    [Fact]
    public void The_limit_counts_zero_sized_elements_across_all_arrays_of_a_value_in_both_directions()
    {
        var type = AlgebraicType.Array(AlgebraicType.Array(Struct(("a", Unit), ("b", Unit))));
        var within = Lengths(2, 30_000, 30_000);
        var tooMany = "[" + string.Join(",", Enumerable.Repeat("null", ValueLimits.MaxZeroSizedElements + 1)) + "]";

        var json = BsatnToJson.Convert(within, type, Typespace.Empty);
        var writer = new BsatnWriter();
        JsonToBsatn.Write(JsonDocument.Parse(json).RootElement, type, Typespace.Empty, writer);

        Assert.Equal(within, writer.WrittenSpan.ToArray());
        var error = Assert.Throws<InvalidDataException>(() => BsatnToJson.Convert(Lengths(3, 30_000, 30_000, 30_000), type, Typespace.Empty));
        Assert.Contains("beyond the limit of 65536", error.Message);
        Assert.Throws<ValueConversionException>(() => JsonToBsatn.Write(JsonDocument.Parse(tooMany).RootElement, AlgebraicType.Array(Unit), Typespace.Empty, new BsatnWriter()));
    }

    [Fact]
    public void Zero_sized_types_are_found_through_references_and_cycles_of_structs()
    {
        var typespace = new Typespace(
            [Struct(("a", AlgebraicType.Ref(1))), Struct(("b", Unit), ("c", AlgebraicType.Ref(0))), Struct(("d", AlgebraicType.Ref(0)), ("e", I32))],
            new Dictionary<uint, string>());

        Assert.True(typespace.IsZeroSized(AlgebraicType.Ref(0)));
        Assert.True(typespace.IsZeroSized(AlgebraicType.Ref(1)));
        Assert.False(typespace.IsZeroSized(AlgebraicType.Ref(2)));
        Assert.False(typespace.IsZeroSized(AlgebraicType.Option(Unit)));
    }

    [Fact]
    public void A_chain_of_100000_references_resolves_once_and_a_cycle_of_references_is_refused()
    {
        var chain = Enumerable.Range(1, 99_999).Select(i => AlgebraicType.Ref((uint)i)).Append(Struct(("v", I32))).ToList();

        var typespace = new Typespace(chain, new Dictionary<uint, string>());

        Assert.All(Enumerable.Range(0, chain.Count), i => Assert.Same(chain[^1], typespace.Resolve(AlgebraicType.Ref((uint)i))));
        Assert.Throws<InvalidDataException>(() => new Typespace([AlgebraicType.Ref(1), AlgebraicType.Ref(2), AlgebraicType.Ref(0)], new Dictionary<uint, string>()));
    }

    [Fact]
    public void Types_that_recurse_without_consuming_input_stop_at_the_depth_limit()
    {
        // A struct that holds only itself, and an option of itself: each level takes no bytes or no JSON.
        var typespace = new Typespace([Struct(("w", AlgebraicType.Ref(0))), AlgebraicType.Option(AlgebraicType.Ref(1))], new Dictionary<uint, string>());

        Assert.Contains("nested deeper than 256", Assert.Throws<InvalidDataException>(() => BsatnToJson.Convert([], AlgebraicType.Ref(0), typespace)).Message);
        Assert.Contains("nested deeper than 256", Assert.Throws<ValueConversionException>(() => JsonToBsatn.Write(JsonDocument.Parse("5").RootElement, AlgebraicType.Ref(1), typespace, new BsatnWriter())).Message);
    }

    [Fact]
    public void Output_beyond_the_limit_is_an_error_in_both_directions()
    {
        var longName = new string('V', 63);
        var tags = AlgebraicType.Array(Enum((longName, Unit)));
        var manyTags = BitConverter.GetBytes(1_000_000).Concat(new byte[1_000_000]).ToArray();
        var options = Struct([.. Enumerable.Range(0, 1024).Select(i => ((string?)$"f{i}", AlgebraicType.Option(I32)))]);
        var manyEmptyObjects = "[" + string.Join(",", Enumerable.Repeat("{}", 40_000)) + "]";

        Assert.Contains("larger than the limit", Assert.Throws<InvalidDataException>(() => BsatnToJson.Convert(manyTags, tags, Typespace.Empty)).Message);
        Assert.Contains("larger than the limit", Assert.Throws<ValueConversionException>(
            () => JsonToBsatn.Write(JsonDocument.Parse(manyEmptyObjects).RootElement, AlgebraicType.Array(options), Typespace.Empty, new BsatnWriter())).Message);
    }

    [Fact]
    public void A_property_given_twice_is_an_error()
    {
        var error = Assert.Throws<ValueConversionException>(
            () => JsonToBsatn.Write(JsonDocument.Parse("""{"a": 1, "a": 2}""").RootElement, Struct(("a", I32)), Typespace.Empty, new BsatnWriter()));

        Assert.Contains("field \"a\" is given more than once", error.Message);
    }

    /// <summary>An array of arrays of zero-sized elements: the outer length, then each inner length.</summary>
    private static byte[] Lengths(uint outer, params uint[] inner) =>
        [.. BitConverter.GetBytes(outer), .. inner.SelectMany(BitConverter.GetBytes)];
}
