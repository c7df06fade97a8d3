using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Procyon.Sats;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// Values an ordinary module or caller can make the host walk: recursive types, deep values, and
/// values that cost nothing to send and much to write. Each call answers or fails on its own;
/// the server goes on serving.
/// </summary>
public sealed class HostileValueTests(ServerFixture fixture) : ServerTest(fixture)
{
    private static readonly JsonDocumentOptions Deep = new() { MaxDepth = ValueLimits.MaxDepth };

    [Fact]
    public async Task The_document_of_a_module_with_a_recursive_parameter_is_valid_and_its_example_is_accepted()
    {
        await OpenApiDocuments.AssertValidAsync(Server);

        var document = JsonDocument.Parse(await Server.Http.GetStringAsync("/swagger/v1/swagger.json")).RootElement;
        var body = document.GetProperty("paths").GetProperty("/v1/databases/faulty/call/echo_chain").GetProperty("post")
            .GetProperty("requestBody").GetProperty("content").GetProperty("application/json");
        Assert.Equal("#/components/schemas/faulty.Node", body.GetProperty("schema").GetProperty("properties").GetProperty("node").GetProperty("$ref").GetString());
        var response = await Server.CallAsync("faulty", "echo_chain", body.GetProperty("example").GetRawText());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task A_chain_of_100_nodes_round_trips_through_a_call()
    {
        var chain = Chain(100);

        var echoed = await Server.CallAsync("faulty", "echo_chain", $"[{chain}]");

        Assert.Equal(HttpStatusCode.OK, echoed.StatusCode);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(chain, documentOptions: Deep), JsonNode.Parse(await echoed.Content.ReadAsStringAsync(), documentOptions: Deep)));
        Assert.Equal("100", await (await Server.CallAsync("faulty", "chain_length", $"[{chain}]")).Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData(10_000, "maximum configured depth of 256")]
    [InlineData(150, "nested deeper than 256 levels")]
    public async Task A_chain_too_deep_is_a_400_and_the_server_keeps_answering(int length, string expected)
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("faulty", "echo_chain", $"[{Chain(length)}]"), HttpStatusCode.BadRequest);

        Assert.Contains(expected, problem.Detail());
        await AssertServerAnswersAsync();
    }

    [Fact]
    public async Task Arguments_nested_deeper_than_values_may_are_a_400()
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("faulty", "add", new string('[', 300) + new string(']', 300)), HttpStatusCode.BadRequest);

        Assert.Contains("not valid JSON", problem.Detail());
    }

    [Theory]
    [InlineData(26, "beyond the limit of 65536")]
    [InlineData(30, "beyond the limit of 65536")]
    [InlineData(31, "2147483648")]
    public async Task Millions_of_units_fail_fast_with_a_short_error_and_the_server_keeps_answering(int log2, string expected)
    {
        var response = await Server.CallAsync("faulty", "many_units", $"[{log2}]");

        var problem = await AssertProblemAsync(response, HttpStatusCode.InternalServerError);
        Assert.Contains(expected, problem.Detail());
        Assert.True(problem.GetRawText().Length < 1024, problem.GetRawText());
        await AssertServerAnswersAsync();
    }

    [Fact]
    public async Task Units_up_to_the_limit_are_written()
    {
        var response = await Server.CallAsync("faulty", "many_units", "[16]");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(65_536, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetArrayLength());
    }

    [Fact]
    public async Task A_chain_of_100_links_is_stored_in_a_jsonb_column_and_read_back()
    {
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("ledger", "store_chain", "[100, 100]")).StatusCode);

        Assert.Equal("100", await (await Server.CallAsync("ledger", "stored_chain_length", "[100]")).Content.ReadAsStringAsync());
        var rows = await QueryAsync("SELECT head FROM chain WHERE id = 100");
        Assert.Equal(HttpStatusCode.OK, rows.StatusCode);
        var head = JsonNode.Parse(await rows.Content.ReadAsStringAsync(), documentOptions: Deep)!["rows"]![0]![0]!;
        Assert.Equal(0, head["depth"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_chain_too_deep_to_store_fails_its_call_and_the_server_keeps_answering()
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("ledger", "store_chain", "[200, 200]"), HttpStatusCode.InternalServerError);

        Assert.Contains("nested deeper than 256 levels", problem.Detail());
        Assert.Equal("0", await (await Server.CallAsync("ledger", "stored_chain_length", "[200]")).Content.ReadAsStringAsync());
        await AssertServerAnswersAsync();
    }

    [Fact]
    public async Task The_SQL_endpoint_refuses_jsonb_nested_deeper_than_values_may()
    {
        var problem = await AssertProblemAsync(await QueryAsync("SELECT (repeat('[', 300) || repeat(']', 300))::jsonb AS deep"), HttpStatusCode.BadRequest);

        Assert.Contains("column deep holds JSON nested deeper than 256 levels", problem.Detail());
        await AssertServerAnswersAsync();
    }

    /// <summary>A list of <paramref name="length"/> faulty.Node values: <c>{"v": 0, "next": {"v": 1, "next": … null}}</c>.</summary>
    private static string Chain(int length)
    {
        var json = new StringBuilder();
        for (var i = 0; i < length; i++)
        {
            json.Append($$"""{"v": {{i}}, "next": """);
        }
        return json.Append("null").Append('}', length).ToString();
    }

    /// <summary>SQL as the owner: the chain table is private.</summary>
    private async Task<HttpResponseMessage> QueryAsync(string sql) => await Server.SqlAsync("ledger", sql, await Server.OwnerTokenAsync());
}
