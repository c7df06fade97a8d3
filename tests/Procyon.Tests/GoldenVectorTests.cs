using System.Text.Json;
using System.Text.Json.Nodes;
using Procyon.Sats;

namespace Procyon.Tests;

/// <summary>
/// The C# half of the codec agreement: tests/golden/values.json (JSON of example-module types)
/// must encode to exactly the bytes in tests/golden/bsatn.txt and decode back. The Rust half,
/// src/rust/modules/example/tests/golden.rs, builds the same values in Rust and checks the same bytes.
/// </summary>
public sealed class GoldenVectorTests
{
    public static TheoryData<string> Names() => [.. Values().Select(v => v.Key)];

    [Theory]
    [MemberData(nameof(Names))]
    public async Task Json_encodes_to_the_golden_bytes_and_the_bytes_decode_to_the_json(string name)
    {
        var typespace = (await TypedValuesTests.DescribeExampleAsync()).Typespace;
        var entry = Values()[name]!;
        var type = AlgebraicType.Ref(typespace.Names.Single(n => n.Value == entry["type"]!.GetValue<string>()).Key);
        var json = entry["json"]!;
        var writer = new BsatnWriter();

        JsonToBsatn.Write(JsonDocument.Parse(json.ToJsonString()).RootElement, type, typespace, writer);

        Assert.Equal(Bytes().GetValueOrDefault(name), Convert.ToHexStringLower(writer.WrittenSpan));
        var decoded = JsonNode.Parse(BsatnToJson.Convert(Convert.FromHexString(Bytes()[name]), type, typespace));
        Assert.True(JsonNode.DeepEquals(json, decoded), $"decoded {decoded?.ToJsonString()}");
    }

    private static JsonObject Values() => JsonNode.Parse(File.ReadAllText(Golden("values.json")))!.AsObject();

    private static Dictionary<string, string> Bytes() => File.ReadAllLines(Golden("bsatn.txt"))
        .Where(line => line.Length > 0 && !line.StartsWith('#'))
        .Select(line => line.Split(' ', 2))
        .ToDictionary(parts => parts[0], parts => parts[1]);

    private static string Golden(string file) => Path.Combine(Procyon.Testing.Modules.RepositoryRoot(), "tests", "golden", file);
}
