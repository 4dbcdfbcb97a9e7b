from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel("Product", [
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("name", models.CharField(max_length=100)),
            ("sold", models.IntegerField(default=0)),
        ]),
        migrations.CreateModel("Order", [
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("number", models.CharField(max_length=20, unique=True)),
            ("customer", models.CharField(max_length=100)),
        ]),
        migrations.CreateModel("OrderLine", [
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("quantity", models.IntegerField()),
            ("order", models.ForeignKey(on_delete=models.deletion.CASCADE, related_name="lines", to="shop.order")),
            ("product", models.ForeignKey(on_delete=models.deletion.CASCADE, to="shop.product")),
        ]),
        migrations.CreateModel("Receipt", [
            ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
            ("text", models.TextField()),
            ("order", models.OneToOneField(on_delete=models.deletion.CASCADE, to="shop.order")),
        ]),
    ]
