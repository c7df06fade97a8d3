using System.Net.Http.Json;
using System.Text.Json;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

public sealed class OpenApiTests(ServerFixture fixture) : ServerTest(fixture)
{
    [Fact]
    public async Task The_document_is_valid_OpenAPI() => await OpenApiDocuments.AssertValidAsync(Server);

    [Fact]
    public async Task Each_function_has_an_operation_tagged_by_database_with_request_and_response_schemas()
    {
        var document = await DocumentAsync();

        var add = document.GetProperty("paths").GetProperty("/v1/databases/example/call/add").GetProperty("post");
        Assert.Equal("example", add.GetProperty("tags")[0].GetString());
        var body = add.GetProperty("requestBody").GetProperty("content").GetProperty("application/json");
        Assert.Equal("integer", body.GetProperty("schema").GetProperty("properties").GetProperty("a").GetProperty("type").GetString());
        Assert.Equal(["a", "b"], body.GetProperty("schema").GetProperty("required").EnumerateArray().Select(r => r.GetString()));
        var exampleResponse = await Server.CallAsync("example", "add", body.GetProperty("example").GetRawText());
        Assert.Equal(2, await exampleResponse.Content.ReadFromJsonAsync<int>());
        var ok = add.GetProperty("responses").GetProperty("200").GetProperty("content").GetProperty("application/json").GetProperty("schema");
        Assert.Equal("integer", ok.GetProperty("type").GetString());
        Assert.True(document.GetProperty("paths").TryGetProperty("/v1/databases/faulty/call/naps", out _));
    }

    [Fact]
    public async Task User_types_are_reusable_components_referenced_by_operations()
    {
        var document = await DocumentAsync();

        var schemas = document.GetProperty("components").GetProperty("schemas");
        var order = schemas.GetProperty("example.Order");
        Assert.Equal("#/components/schemas/example.Item", order.GetProperty("properties").GetProperty("items").GetProperty("items").GetProperty("$ref").GetString());
        Assert.DoesNotContain("note", order.GetProperty("required").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(3, schemas.GetProperty("example.Status").GetProperty("oneOf").GetArrayLength());
        Assert.Equal("#/components/schemas/example.Tree", schemas.GetProperty("example.Tree").GetProperty("properties").GetProperty("children").GetProperty("items").GetProperty("$ref").GetString());
        var echo = document.GetProperty("paths").GetProperty("/v1/databases/example/call/echo_order").GetProperty("post");
        Assert.Equal("#/components/schemas/example.Order", echo.GetProperty("requestBody").GetProperty("content").GetProperty("application/json").GetProperty("schema").GetProperty("properties").GetProperty("order").GetProperty("$ref").GetString());
    }

    [Fact]
    public async Task Special_types_have_their_string_formats()
    {
        var everything = (await DocumentAsync()).GetProperty("components").GetProperty("schemas").GetProperty("example.Everything").GetProperty("properties");

        Assert.Equal("string", everything.GetProperty("uuid").GetProperty("type").GetString());
        Assert.Equal("uuid", everything.GetProperty("uuid").GetProperty("format").GetString());
        Assert.Equal("date-time", everything.GetProperty("when").GetProperty("format").GetString());
    }

    [Fact]
    public async Task The_document_follows_publishing_and_deleting()
    {
        (await Server.PublishAsync("swagger-fresh", "faulty")).EnsureSuccessStatusCode();
        Assert.True((await DocumentAsync()).GetProperty("paths").TryGetProperty("/v1/databases/swagger-fresh/call/spins", out _));

        await Server.DeleteAsync("swagger-fresh");

        Assert.False((await DocumentAsync()).GetProperty("paths").TryGetProperty("/v1/databases/swagger-fresh/call/spins", out _));
    }

    [Fact]
    public async Task The_example_request_body_of_every_operation_is_accepted()
    {
        var paths = (await DocumentAsync()).GetProperty("paths");
        foreach (var path in paths.EnumerateObject().Where(p => p.Name.StartsWith("/v1/databases/example/call/", StringComparison.Ordinal)))
        {
            var function = path.Name.Split('/').Last();
            var body = path.Value.GetProperty("post").TryGetProperty("requestBody", out var request)
                ? request.GetProperty("content").GetProperty("application/json").GetProperty("example").GetRawText()
                : "";

            var response = await Server.CallAsync("example", function, body);

            Assert.True(response.IsSuccessStatusCode, $"{function}({body}) → {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
    }

    private async Task<JsonElement> DocumentAsync() =>
        JsonDocument.Parse(await Server.Http.GetStringAsync("/swagger/v1/swagger.json")).RootElement.Clone();
}
